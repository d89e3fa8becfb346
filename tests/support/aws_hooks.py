"""botocore event hooks that give tests exact AWS answers where moto is kind or absent.

* `FaultHook` (before-send): AWS error bodies in each protocol's wire shape, timeouts and
  malformed bodies, inside botocore's retry loop, so rdsaudit's real retry path runs.
* `PagedAnswers` (before-call): parsed multi-page answers with Markers, for listings moto
  returns in one page, and for operations moto lacks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError

JSON_SERVICES = {"kms"}
_SCOPE = re.compile(r"Credential=[^/]+/\d+/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


def error_response(url: str, service: str, code: str, message: str, status: int) -> AWSResponse:
    if service in JSON_SERVICES:
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = {"x-amzn-ErrorType": code, "Content-Type": "application/x-amz-json-1.1"}
    else:
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
                f"<Message>{message}</Message></Error><RequestId>r-1</RequestId>"
                "</ErrorResponse>").encode()
        headers = {"Content-Type": "text/xml"}
    return AWSResponse(url, status, headers, _Body(body))


@dataclass
class Fault:
    service: str
    operation: str
    region: str | None = None
    code: str = "AccessDenied"
    status: int = 403
    message: str = "User is not authorized to perform this operation"
    kind: str = "error"  # error | timeout | malformed
    times: int | None = None  # None: always
    match: str | None = None  # substring of the request body
    nth: int | None = None  # only the nth matching request (1-based), e.g. a second page
    seen: int = 0
    fired: int = 0


@dataclass
class FaultHook:
    faults: list[Fault] = field(default_factory=list)
    sent: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, *args: Any, **kwargs: Any) -> Fault:
        fault = Fault(*args, **kwargs)
        self.faults.append(fault)
        return fault

    def install(self, session: boto3.Session) -> FaultHook:
        session.events.register_first("before-send", self)
        return self

    def __call__(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        _, service, operation = event_name.split(".", 2)
        auth = request.headers.get("Authorization", b"")
        auth = auth.decode() if isinstance(auth, bytes) else str(auth)
        scope = _SCOPE.search(auth)
        region = scope.group(1) if scope else ""
        self.sent.append((service, region, operation))
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
        for fault in self.faults:
            if fault.service != service or fault.operation != operation:
                continue
            if fault.region is not None and fault.region != region:
                continue
            if fault.match is not None and fault.match not in body:
                continue
            fault.seen += 1
            if fault.nth is not None and fault.seen != fault.nth:
                continue
            if fault.times is not None and fault.fired >= fault.times:
                continue
            fault.fired += 1
            if fault.kind == "timeout":
                raise ReadTimeoutError(endpoint_url=request.url)
            if fault.kind == "malformed":
                return AWSResponse(request.url, 200, {}, _Body(b"<DescribeDBInst"))
            return error_response(request.url, service, fault.code, fault.message,
                                  fault.status)
        return None


@dataclass
class PagedAnswers:
    """Answer `operation` in `region` with `items` split into pages of `page_size`."""

    answers: dict[tuple[str, str | None], tuple[str, Sequence[Mapping[str, Any]], int]] = field(
        default_factory=dict)
    calls: list[tuple[str, str, str | None]] = field(default_factory=list)

    def add(self, operation: str, result_key: str, items: Sequence[Mapping[str, Any]],
            region: str | None = None, page_size: int = 2) -> None:
        self.answers[(operation, region)] = (result_key, items, page_size)

    def install(self, session: boto3.Session) -> PagedAnswers:
        session.events.register_first("before-call", self)
        return self

    def __call__(self, model: Any, params: Mapping[str, Any], context: Mapping[str, Any],
                 **_: Any) -> Any:
        region = context.get("client_region")
        answer = self.answers.get((model.name, region)) or self.answers.get((model.name, None))
        if answer is None:
            return None
        result_key, items, size = answer
        body = params.get("body")
        if isinstance(body, bytes):
            body = body.decode()
        if isinstance(body, str):
            request = json.loads(body) if body.startswith("{") else {}
        else:
            request = dict(body or {})
        marker = request.get("Marker")
        self.calls.append((model.name, str(region), marker))
        start = int(marker) if marker else 0
        page: dict[str, Any] = {result_key: list(items[start:start + size])}
        if start + size < len(items):
            if model.service_model.service_name == "kms":
                page.update(NextMarker=str(start + size), Truncated=True)
            else:
                page["Marker"] = str(start + size)
        elif model.service_model.service_name == "kms":
            page["Truncated"] = False
        return AWSResponse("https://stub", 200, {}, None), page


@dataclass
class KeyAnswers:
    """Answer DescribeKey (and GetKeyRotationStatus) for given key ARNs with exact AWS
    shapes, as botocore parses them: what moto cannot say (multi-Region configuration,
    imported-material expiry, custom key stores, values newer than the model)."""

    metadata: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    rotation: dict[str, bool] = field(default_factory=dict)
    calls: list[tuple[str, str, str]] = field(default_factory=list)

    def install(self, session: boto3.Session) -> KeyAnswers:
        session.events.register_first("before-call.kms", self)
        return self

    def __call__(self, model: Any, params: Mapping[str, Any], context: Mapping[str, Any],
                 **_: Any) -> Any:
        if model.name not in ("DescribeKey", "GetKeyRotationStatus"):
            return None
        body = params.get("body")
        if isinstance(body, bytes):
            body = body.decode()
        request = json.loads(body) if isinstance(body, str) and body.startswith("{") else {}
        key_id = str(request.get("KeyId", ""))
        if key_id not in self.metadata:
            return None
        self.calls.append((model.name, str(context.get("client_region")), key_id))
        if model.name == "DescribeKey":
            return AWSResponse("https://stub", 200, {}, None), {
                "KeyMetadata": dict(self.metadata[key_id])}
        return AWSResponse("https://stub", 200, {}, None), {
            "KeyRotationEnabled": self.rotation.get(key_id, False), "KeyId": key_id}
