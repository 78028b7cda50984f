"""Schemathesis hooks for tests/e2e/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

``POST /tsa`` takes a DER TimeStampReq as ``application/timestamp-query`` (RFC 3161 §3.4): its
generated bodies are bytes, sent as they are, like ``application/octet-stream``; so does
``POST /api/v1/agency-results``, an agency's signed verdict as ``application/pkcs7-mime``.
"""

import schemathesis

schemathesis.serializer.alias("application/timestamp-query", "application/octet-stream")
schemathesis.serializer.alias("application/pkcs7-mime", "application/octet-stream")
