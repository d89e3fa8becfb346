"""`-v/--verbose`: botocore's debug log of every AWS call, on stderr, credentials redacted.

botocore's debug lines carry the request headers, among them `Authorization` (the SigV4
credential scope and signature) and `X-Amz-Security-Token` (the session token): every record
passes `rdsaudit.redact.RedactingFilter` before it is written, the redaction every other
byte rdsaudit writes passes too.
"""

from __future__ import annotations

import logging
import sys

from rdsaudit.redact import RedactingFilter


def log_aws_calls() -> logging.Handler:
    """Send botocore's (and rdsaudit's) debug log to stderr through the redaction step."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter())
    for name in ("botocore", "boto3", "rdsaudit"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    return handler
