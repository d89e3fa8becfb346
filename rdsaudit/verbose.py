"""`-v/--verbose`: botocore's debug log of every AWS call, on stderr, credentials redacted.

botocore's debug lines carry the request headers, among them `Authorization` (the SigV4
credential scope and signature) and `X-Amz-Security-Token` (the session token): every record
passes a redacting filter before it is written. The redaction step is the hardening issue's
`rdsaudit.redact.RedactingFilter` when it is present; until then a minimal filter here masks
those headers and anything shaped like an access key id.
"""

from __future__ import annotations

import logging
import re
import sys

MASK = "[REDACTED]"
_HEADERS = re.compile(
    r"(?i)(\b(?:authorization|x-amz-security-token|x-amz-signature|x-amz-credential)\b"
    r"[\"']?\s*[:=]\s*b?[\"']?)[^\"'\r\n&<>]+")
_KEY_ID = re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{12,124}(?![A-Za-z0-9])")
_FIELDS = re.compile(
    r"(?i)(\b(?:secret_?access_?key|session_?token|aws_secret_access_key|aws_session_token)"
    r"\b[\"']?(?:\s*[:=>]\s*|\s+)[\"']?)[A-Za-z0-9/+=_\-]{8,}")


class _MinimalRedaction(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: log its template
            message = str(record.msg)
        message = _HEADERS.sub(lambda m: m.group(1) + MASK, message)
        message = _FIELDS.sub(lambda m: m.group(1) + MASK, message)
        record.msg = _KEY_ID.sub(MASK, message)
        record.args = None
        return True


def redaction_filter() -> logging.Filter:
    """The redaction step every log record passes (the hook for rdsaudit.redact)."""
    try:
        from rdsaudit.redact import RedactingFilter  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return _MinimalRedaction()
    return RedactingFilter()  # type: ignore[no-any-return,unused-ignore]


def log_aws_calls() -> logging.Handler:
    """Send botocore's (and rdsaudit's) debug log to stderr through the redaction step."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    handler.addFilter(redaction_filter())
    for name in ("botocore", "boto3", "rdsaudit"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    return handler
