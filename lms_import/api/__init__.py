"""The REST API (SPEC §12): /api/v1/imports/…, its OpenAPI schema and browsable docs. A face like the web's pages:
it checks permissions, binds the request and calls lms_import.services and lms_import.selectors."""
