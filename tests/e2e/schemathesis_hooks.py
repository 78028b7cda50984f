"""Schemathesis hooks for tests/e2e/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

``POST /tsa`` takes a DER TimeStampReq as ``application/timestamp-query`` (RFC 3161 §3.4): its
generated bodies are bytes, sent as they are, like ``application/octet-stream``; so does
``POST /api/v1/agency-results``, an agency's signed verdict as ``application/pkcs7-mime``, and
``POST /ocsp``, a DER OCSPRequest as ``application/ocsp-request`` (RFC 6960 A.1).
"""

import schemathesis

schemathesis.serializer.alias("application/timestamp-query", "application/octet-stream")
schemathesis.serializer.alias("application/pkcs7-mime", "application/octet-stream")
schemathesis.serializer.alias("application/ocsp-request", "application/octet-stream")
