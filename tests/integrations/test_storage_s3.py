"""IMPORT_STORAGE=s3: uploads and error reports in an S3-compatible bucket (moto's standalone server, a real process
started by the test), so that the web and the workers share no disk. The whole flow: upload, validate, apply (with
the producer process), error report, retention. The default shared directory is what every other test uses."""

import socket
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from enrollments.models import Enrollment
from lms_import.models import ImportJob
from lms_import.services import import_files_purge

from .conftest import WITH_ERRORS, csv_bytes, free_port, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]
BUCKET = "lms-imports-test"
KEYS = {"AWS_ACCESS_KEY_ID": "testing-key", "AWS_SECRET_ACCESS_KEY": "testing-secret"}


@pytest.fixture
def s3_server(tmp_path):
    """`moto_server` on 127.0.0.1 with one empty bucket; its endpoint URL."""
    port = free_port()
    log = (tmp_path / "moto.log").open("wb")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def listening() -> bool:
        assert process.poll() is None, (tmp_path / "moto.log").read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    wait_for(listening, timeout=30, what="moto_server to listen")
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=KEYS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=KEYS["AWS_SECRET_ACCESS_KEY"],
    )
    client.create_bucket(Bucket=BUCKET)
    yield endpoint, client
    process.terminate()
    process.wait(timeout=10)
    log.close()


def keys(client, prefix: str = "") -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))


def test_the_whole_flow_through_a_bucket_with_no_shared_disk(
    s3_server, start_worker, api, staff_user, course, learner, settings, tmp_path
):
    endpoint, client = s3_server
    # The web (this process, serving the live server) stores in the bucket…
    settings.STORAGES = settings.STORAGES | {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": endpoint,
                "region_name": "us-east-1",
                "access_key": KEYS["AWS_ACCESS_KEY_ID"],
                "secret_key": KEYS["AWS_SECRET_ACCESS_KEY"],
                "default_acl": None,
                "file_overwrite": False,
            },
        }
    }
    # … and the worker too, configured as the README says, with a media directory of its own (no shared disk) and
    # a temporary directory to show that its local copies are removed.
    worker_media, worker_tmp = tmp_path / "worker-media", tmp_path / "worker-tmp"
    worker_tmp.mkdir()
    worker = start_worker(
        env={
            "IMPORT_STORAGE": "s3",
            "AWS_STORAGE_BUCKET_NAME": BUCKET,
            "AWS_S3_ENDPOINT_URL": endpoint,
            "AWS_S3_REGION_NAME": "us-east-1",
            "LMS_MEDIA_ROOT": str(worker_media),
            "TMPDIR": str(worker_tmp),
            "EMAIL_URL": "dummymail://",
        }
        | KEYS
    )
    staff = api(staff_user)

    sent = staff.post(
        "imports/",
        data={"importer": "course", "course": "CARD101", "skip_invalid": "true"},
        files={"file": ("records.csv", csv_bytes(WITH_ERRORS), "text/csv")},
    ).json()

    def status(*wanted):
        def current():
            document = staff.get(f"imports/{sent['job']}/").json()
            return document if document["status"] in wanted else None

        return current

    checked = wait_for(status("validated", "failed"), what="the validation", log=worker)
    assert checked["status"] == "validated" and checked["rows"]["valid"] == 1 and checked["confirmable"]
    job = ImportJob.objects.get(pk=sent["job"])
    assert keys(client, "imports/") == [job.file.name] and keys(client, "reports/") == [job.error_report.name]

    assert staff.post(f"imports/{job.pk}/confirm/", json={}).status_code == 202
    done = wait_for(status("succeeded", "failed"), what="the import", log=worker)
    assert done["status"] == "succeeded" and done["rows"]["skipped"] == 2, done
    assert Enrollment.objects.get().import_job_id == job.pk
    job.refresh_from_db()
    assert keys(client, "reports/") == [job.error_report.name]  # the apply's report replaced the validation's

    report = staff.get(done["links"]["error_report"])
    assert report.status_code == 200 and b"E_CREDITS_OVER_MAX" in report.content
    assert report.content == client.get_object(Bucket=BUCKET, Key=job.error_report.name)["Body"].read()

    assert not list(settings.MEDIA_ROOT.rglob("*.*")) and not list(worker_media.rglob("*.*"))  # no disk shared
    copies = [p.name for p in worker_tmp.rglob("*") if p.name.startswith(("import-", "errors-"))]
    assert copies == []  # the worker's local copies (and its report drafts) are gone

    assert import_files_purge(days=-1) == [job.pk]  # retention deletes from the bucket as well
    assert keys(client) == []
