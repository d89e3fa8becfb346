"""Faults: what can go wrong with an AWS answer, injected on purpose.

A `Fault` is scoped by service, region, action, request body and page, and is one of
FAULT_KINDS: an AWS-shaped error, a timeout, a truncated body, extra latency, a body sent a
byte at a time, a request held open, or a hostile answer (a marker that cycles, a value of
the wrong type, a lone surrogate, terminal escape sequences). The hostile rewrites are pure
functions of the answer; `FakeAWS` decides when they apply."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Final
from urllib.parse import urlencode

from rdsaudit.demo.emulator.wire import (
    Request,
    Response,
    json_aws_resp,
    local_name,
    parse_xml,
    serialize_any,
)

FAULT_KINDS: Final = frozenset({"error", "timeout", "malformed", "latency", "drip", "hang",
                                 "cycle-marker", "wrong-type", "surrogate", "escape"})


# Default `Fault.delay` per kind. A timeout must outlast the client's read timeout
# (botocore's default is 60 s, so tests that use it lower the client's read_timeout).
# `drip`: seconds between bytes; `hang`: how long the request is held (until stop()).
DEFAULT_DELAY: Final[dict[str, float]] = {"timeout": 30.0, "latency": 0.5, "drip": 5.0,
                                           "hang": 3600.0}


# What `escape` writes into text: OSC window title, erase line, SGR colour, a C1 CSI and
# bidi overrides. XML 1.0 cannot carry C0 controls, so XML answers get the C1/bidi part.
ESCAPE_TEXT: Final = "\x1b]0;pwned\x07\x1b[2K\x1b[31mRED\u009b31m\u202eevil\u2066"


ESCAPE_XML_TEXT: Final = "\u009b31mRED\u202eevil\u2066\u0085"


SURROGATE_TEXT: Final = "\ud800"


# `cycle-marker` modes: markers alternating between two values, or always increasing.
CYCLE_MODES: Final = ("alternate", "increase")


_CYCLE_PREFIX: Final = "cycle-"


# `wrong-type` modes: `fields` (default: `field` set to `value`, or without a field every
# number and timestamp made text), `no-result` (the …Result element dropped), `list` (a JSON
# answer that is a list).
WRONG_TYPE_MODES: Final = ("fields", "no-result", "list")


_SURROGATE_MARK: Final = "@@rdsaudit-surrogate@@"


@dataclass
class Fault:
    """One injected failure.

    `service` and `region` are matched against the SigV4 credential scope, `action` against
    the form `Action` (query protocol) or the `X-Amz-Target` operation (JSON protocol);
    `action="*"` matches every action of the service. `match` is a substring that must occur
    in the request (raw or URL-decoded), e.g. a KMS key ARN. `page=N` fires only on the Nth
    matching request counted from when the fault was added (e.g. 2 = fail the second page of
    a listing). `times` bounds how often it fires (None = forever).

    Kinds: `error` answers `code`/`status`/`message` in the service's wire format; `timeout`
    waits `delay` seconds (default 30) before answering so a client read timeout fires;
    `malformed` answers 200 with a truncated body (or exactly `body`, when given); `latency`
    waits `delay` seconds (default 0.5) and passes through.

    Hostile kinds: `drip` sends the real answer one byte every `delay` seconds (default 5),
    so no socket read ever times out; `hang` holds the request `delay` seconds (default an
    hour, or until the server stops) without a byte; `cycle-marker` answers a listing's
    first page with a next marker that alternates between two values (`mode="alternate"`)
    or increases forever (`mode="increase"`); `wrong-type` answers well-formed data of the
    wrong type (see WRONG_TYPE_MODES); `surrogate` and `escape` put a lone surrogate or
    terminal escapes into `field` (default: every text value of the answer).
    """

    service: str
    action: str
    region: str | None = None
    kind: str = "error"
    code: str = "AccessDenied"
    status: int = 403
    message: str = ""
    times: int | None = None
    match: str | None = None
    page: int | None = None
    delay: float | None = None
    mode: str | None = None
    field: str | None = None
    value: str | None = None
    body: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (expected {sorted(FAULT_KINDS)})")
        modes = {"cycle-marker": CYCLE_MODES, "wrong-type": WRONG_TYPE_MODES}.get(self.kind)
        if self.mode is not None and (modes is None or self.mode not in modes):
            raise ValueError(f"mode {self.mode!r} does not fit fault kind {self.kind!r}")
        if self.times is not None and self.times < 0:
            raise ValueError("times must be >= 0 or None")
        if self.page is not None and self.page < 1:
            raise ValueError("page is 1-based")
        if not 100 <= self.status <= 599:
            raise ValueError(f"bad HTTP status {self.status}")

    @property
    def effective_delay(self) -> float:
        if self.delay is not None:
            return self.delay
        return DEFAULT_DELAY.get(self.kind, 0.0)

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> Fault:
        """Build from the `POST /_fault` body; unknown keys are an error, not ignored."""
        known = {f.name for f in fields(cls)}
        unknown = set(payload) - known
        if unknown:
            raise ValueError(f"unknown Fault fields: {sorted(unknown)}")
        return cls(**payload)


@dataclass(frozen=True)
class Call:
    """One AWS request the layer saw, with the status code the client got."""

    service: str
    region: str
    action: str
    status: int
    fault: str | None = None  # the kind of fault applied, if any

    @property
    def key(self) -> str:
        return f"{self.service}:{self.action}"


@dataclass
class FaultState:
    fault: Fault
    seen: int = 0  # matching requests since the fault was added
    fired: int = 0


def request_marker(req: Request) -> str | None:
    if req.protocol == "query":
        return req.param("Marker") or req.param("NextToken")
    data = json_or_none(req.body)
    if isinstance(data, dict):
        for name in ("Marker", "NextToken"):
            if isinstance(data.get(name), str):
                return str(data[name])
    return None


def first_page(req: Request) -> Request:
    """The request without its marker: a `cycle-marker` answer is always the first page."""
    if req.protocol == "query":
        form = tuple((k, v) for k, v in req.form if k not in ("Marker", "NextToken"))
        return replace(req, form=form, body=urlencode(form).encode())
    data = json_or_none(req.body)
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in ("Marker", "NextToken")}
        return replace(req, body=json.dumps(data).encode())
    return req


def json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body.strip() else {}
    except ValueError:
        return None


def next_cycle_marker(mode: str, sent: str | None) -> str:
    step = 0
    if sent is not None and sent.startswith(_CYCLE_PREFIX):
        try:
            step = int(sent[len(_CYCLE_PREFIX):])
        except ValueError:
            step = 0
    if mode == "alternate":
        return f"{_CYCLE_PREFIX}{2 if step == 1 else 1}"
    return f"{_CYCLE_PREFIX}{step + 1}"


def hostile(fault: Fault, req: Request, resp: Response, sent_marker: str | None) -> Response:
    """A 200 answer made hostile the way `fault` says (see `Fault`)."""
    kind = fault.kind
    if kind == "malformed":
        return Response(200, resp.headers, resp.body[: max(1, len(resp.body) // 2)])
    if kind == "drip":
        return Response(resp.status, resp.headers, resp.body, drip=fault.effective_delay)
    if kind not in ("cycle-marker", "wrong-type", "surrogate", "escape"):
        return resp
    if req.protocol == "json":
        data = json_or_none(resp.body)
        if data is None:
            return resp
        return json_aws_resp(200, hostile_json(fault, req, data, sent_marker), resp.headers)
    try:
        root = parse_xml(resp.body)
    except ET.ParseError:
        return resp
    body = serialize_any(hostile_xml(fault, req, root, sent_marker))
    if kind == "surrogate":
        # XML 1.0 cannot carry a lone surrogate: the reference is what a hostile server sends.
        body = body.replace(_SURROGATE_MARK.encode(), b"&#xD800;")
    return Response(200, resp.headers, body)


def hostile_json(fault: Fault, req: Request, data: Any, sent_marker: str | None) -> Any:
    kind = fault.kind
    if kind == "cycle-marker":
        if isinstance(data, dict):
            marker = next_cycle_marker(fault.mode or "alternate", sent_marker)
            if req.service == "kms":
                data["NextMarker"], data["Truncated"] = marker, True
            else:
                data["NextToken"] = marker
        return data
    if kind == "wrong-type":
        mode = fault.mode or "fields"
        if mode == "list":
            return [data]
        if mode == "no-result":
            return {}
        if fault.field is not None:
            return set_json(data, fault.field, json_value(fault.value))
        return retype_json(data)
    payload = SURROGATE_TEXT if kind == "surrogate" else ESCAPE_TEXT
    return taint_json(data, fault.field, payload)


def json_value(text: str | None) -> Any:
    if text is None:
        return "seven"
    try:
        return json.loads(text)
    except ValueError:
        return text


def set_json(data: Any, name: str, value: Any) -> Any:
    if isinstance(data, dict):
        return {k: value if k == name else set_json(v, name, value) for k, v in data.items()}
    if isinstance(data, list):
        return [set_json(v, name, value) for v in data]
    return data


def retype_json(data: Any) -> Any:
    """Every number and boolean as text: well-formed JSON, wrong types everywhere."""
    if isinstance(data, dict):
        return {k: retype_json(v) for k, v in data.items()}
    if isinstance(data, list):
        return [retype_json(v) for v in data]
    if isinstance(data, bool):
        return "yes" if data else "no"
    if isinstance(data, int | float):
        return "seven"
    return data


def taint_json(data: Any, name: str | None, payload: str, key: str | None = None) -> Any:
    if isinstance(data, dict):
        return {k: taint_json(v, name, payload, k) for k, v in data.items()}
    if isinstance(data, list):
        return [taint_json(v, name, payload, key) for v in data]
    if isinstance(data, str) and (name is None or key == name) and key not in (
            "NextMarker", "NextToken"):
        return data + payload
    return data


_NUMBER = re.compile(r"-?\d+(\.\d+)?")


_DATE = re.compile(r"\d{4}-\d\d-\d\dT")


def hostile_xml(fault: Fault, req: Request, root: ET.Element,
                 sent_marker: str | None) -> ET.Element:
    kind = fault.kind
    result = next((e for e in root if local_name(e.tag).endswith("Result")), None)
    ns = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else ""
    if kind == "cycle-marker":
        if result is not None:
            for old in [e for e in result if local_name(e.tag) in ("Marker", "NextToken")]:
                result.remove(old)
            tag = "NextToken" if req.service == "ec2" else "Marker"
            marker = ET.SubElement(result, f"{{{ns}}}{tag}" if ns else tag)
            marker.text = next_cycle_marker(fault.mode or "alternate", sent_marker)
        return root
    if kind == "wrong-type":
        if (fault.mode or "fields") != "fields":
            # Query answers wrap their data in …Result; EC2's sit under the root itself.
            dropped = [result] if result is not None else [
                e for e in root if local_name(e.tag) not in ("requestId", "RequestId")]
            for elem in dropped:
                root.remove(elem)
            return root
        for elem in root.iter():
            if len(elem) or elem.text is None:
                continue
            if fault.field is not None:
                if local_name(elem.tag) == fault.field:
                    elem.text = fault.value if fault.value is not None else "seven"
            elif _NUMBER.fullmatch(elem.text):
                elem.text = "seven"
            elif _DATE.match(elem.text):
                elem.text = "not-a-date"
        return root
    payload = _SURROGATE_MARK if kind == "surrogate" else ESCAPE_XML_TEXT
    for elem in (result if result is not None else root).iter():
        if len(elem) or not elem.text or local_name(elem.tag) in ("Marker", "NextToken"):
            continue
        if fault.field is None or local_name(elem.tag) == fault.field:
            elem.text += payload
    return root


def default_message(req: Request, fault: Fault) -> str:
    if "AccessDenied" in fault.code or fault.code == "UnauthorizedOperation":
        return (
            f"User: arn:aws:iam::{req.account}:user/rdsaudit is not authorized to perform: "
            f"{req.service}:{req.action} because no identity-based policy allows the "
            f"{req.service}:{req.action} action"
        )
    if "Throttl" in fault.code:
        return "Rate exceeded"
    return f"Injected fault {fault.code} for {req.service}:{req.action}"
