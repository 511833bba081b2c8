"""Uploads over the size limit are refused while they arrive: nothing of them is kept in memory or on disk.

Django reads a multipart body before the view runs (the CSRF check reads request.POST), so the limit
is an upload handler that the view installs first. It stops at the file part as soon as the request
announces more bytes than the limit allows (or when the bytes received pass it) and lets Django
discard the rest of the body; the fields sent before the file (the CSRF token first of all) are
still read, so the form can answer with a clear message instead of a broken connection.
"""

from django.core.files.uploadhandler import FileUploadHandler, StopUpload

# Room for the other form fields and the multipart boundaries around the file.
FORM_OVERHEAD_BYTES = 64 * 1024


class SizeLimitedUploadHandler(FileUploadHandler):
    def __init__(self, request=None, *, limit: int):
        super().__init__(request)
        self.limit = limit
        self.request_bytes: int | None = None
        self.refused_size: int | None = None  # set when the upload was refused

    @property
    def too_large(self) -> bool:
        return self.refused_size is not None

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.request_bytes = content_length
        return None  # go on with the normal parsing

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        if self.request_bytes and self.request_bytes > self.limit + FORM_OVERHEAD_BYTES:
            self._refuse(self.request_bytes)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) > self.limit:
            self._refuse(start + len(raw_data))
        return raw_data

    def file_complete(self, file_size: int):
        return None  # the next handler (memory or temporary file) keeps the file

    def _refuse(self, size: int) -> None:
        self.refused_size = size
        raise StopUpload(connection_reset=False)
