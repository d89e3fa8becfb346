"""What a failed AWS call was: its code and message in AWS's words, and which failures are
AWS's (or the network's) doing rather than ours.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.parsers import (
    ResponseParserError,
)

from rdsaudit.collect.deadline import DeadlineExceeded
from rdsaudit.redact import redact

# A region the account has not enabled answers with one of these (aws-facts §6).
REGION_DISABLED_CODES = frozenset(
    {"InvalidClientTokenId", "UnrecognizedClientException", "AuthFailure", "OptInRequired"}
)


ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess"}
)


class MalformedAnswer(Exception):
    """An answer botocore parsed into something that is not the modelled structure."""


class RunawayListing(Exception):
    """A listing that would not end: a marker seen before (a cycle) or too many pages."""


# What an AWS call can raise that is AWS's (or the network's) doing, not ours. botocore's
# parser error is not a BotoCoreError, so it is listed on its own.
AWS_FAILURES = (ClientError, BotoCoreError, ResponseParserError, MalformedAnswer,
                RunawayListing, DeadlineExceeded)


@dataclass(frozen=True)
class Failure:
    code: str
    message: str

    @property
    def region_disabled(self) -> bool:
        return self.code in REGION_DISABLED_CODES

    @property
    def access_denied(self) -> bool:
        return self.code in ACCESS_DENIED_CODES


def describe_failure(exc: Exception) -> Failure:
    """The code and message of a failed call, in AWS's words where AWS gave any."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code") or exc.response.get("ResponseMetadata", {}).get(
            "HTTPStatusCode", "Unknown"))
        message = str(err.get("Message") or exc)
        return Failure(code, one_line(message))
    if isinstance(exc, ReadTimeoutError | ConnectTimeoutError):
        return Failure("Timeout", one_line(str(exc)))
    if isinstance(exc, EndpointConnectionError):
        return Failure("EndpointConnectionError", one_line(str(exc)))
    if isinstance(exc, DeadlineExceeded):
        return Failure("DeadlineExceeded", str(exc))
    if isinstance(exc, RunawayListing):
        return Failure("RunawayPagination", str(exc))
    if isinstance(exc, MalformedAnswer):
        return Failure("MalformedResponse", str(exc))
    if isinstance(exc, ResponseParserError):
        # botocore's text embeds the raw body, which may hold credentials (a truncated
        # AssumeRole answer does): say what went wrong, never what was received.
        return Failure("MalformedResponse", "the response could not be parsed (its body is "
                       "not shown: it may hold secrets)")
    return Failure(type(exc).__name__, one_line(str(exc)))


def one_line(text: str, limit: int = 500) -> str:
    flat = redact(" ".join(text.split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
