"""A fake AWS on 127.0.0.1 for the demo, the end-to-end tests and the benchmarks.

moto answers the AWS calls; a small WSGI layer in front of it does what moto cannot:

* **faults**: AWS-shaped errors (XML for the query services, JSON for KMS), timeouts,
  truncated bodies and extra latency, scoped by service, region, action, request body and
  page, so the collector's error handling can be exercised through a real HTTP stack;
* **pagination** for the RDS listings and KMS calls moto answers in one page (moto-fidelity
  §6/§11.11), so the collector's paging code runs against it;
* **DescribeDBClusterAutomatedBackups**, which moto does not implement (HTTP 500);
* **DescribeDBInstanceAutomatedBackups enrichment**: moto returns only the identifier and
  status; the layer adds the encryption facts from moto's own backend (moto-fidelity §5);
* **overlays**: per-ARN field patches for states moto cannot hold, e.g. an Aurora cluster
  encrypted with an AWS owned key (`StorageEncryptionType=sse-rds`, no `KmsKeyId`) or an
  AWS managed KMS key (`KeyManager=AWS`);
* **call accounting**: every AWS request is recorded, so tests and benchmarks can assert on
  the API calls a scan made.

Tests that run rdsaudit as a subprocess cannot call Python methods, so everything is also
reachable over HTTP under `/_fault`, `/_calls`, `/_overlay` and `/_cluster_automated_backup`.

The layer runs in the same process as moto on purpose: seeding through moto in-process and
then serving is ~30x faster than seeding over HTTP (moto-fidelity §9), and the enrichment
reads moto's backend objects directly.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import logging
import os
import re
import secrets
import threading
import uuid
import xml.etree.ElementTree as ET
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields, replace
from types import TracebackType
from typing import Any, Final
from urllib.parse import parse_qsl, unquote_plus, urlencode
from wsgiref.types import StartResponse, WSGIEnvironment

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

log = logging.getLogger(__name__)

RDS_NS: Final = "http://rds.amazonaws.com/doc/2014-10-31/"
_QUERY_NS: Final[dict[str, str]] = {
    "rds": RDS_NS,
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
}
DEFAULT_ACCOUNT: Final = "123456789012"  # moto's default account

FAULT_KINDS: Final = frozenset({"error", "timeout", "malformed", "latency", "drip", "hang",
                                 "cycle-marker", "wrong-type", "surrogate", "escape"})
# Default `Fault.delay` per kind. A timeout must outlast the client's read timeout
# (botocore's default is 60 s, so tests that use it lower the client's read_timeout).
# `drip`: seconds between bytes; `hang`: how long the request is held (until stop()).
_DEFAULT_DELAY: Final[dict[str, float]] = {"timeout": 30.0, "latency": 0.5, "drip": 5.0,
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

# RDS listings moto answers in one page: action -> (list element, member element).
_RDS_PAGED: Final[dict[str, tuple[str, str]]] = {
    "DescribeDBSnapshots": ("DBSnapshots", "DBSnapshot"),
    "DescribeDBClusters": ("DBClusters", "DBCluster"),
    "DescribeDBClusterSnapshots": ("DBClusterSnapshots", "DBClusterSnapshot"),
    "DescribeDBInstanceAutomatedBackups": (
        "DBInstanceAutomatedBackups",
        "DBInstanceAutomatedBackup",
    ),
    "DescribeDBClusterAutomatedBackups": ("DBClusterAutomatedBackups", "DBClusterAutomatedBackup"),
}
# KMS listings moto answers in one page: action -> (result key, min, max, default Limit).
_KMS_PAGED: Final[dict[str, tuple[str, int, int, int]]] = {
    "ListAliases": ("Aliases", 1, 100, 50),
    "ListKeys": ("Keys", 1, 1000, 100),
}
_RDS_MAX_RECORDS: Final = (20, 100, 100)  # AWS: min 20, max 100, default 100
_PAGE_CACHE_SIZE: Final = 64

_CREDENTIAL_RE: Final = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request")
_READ_ONLY_PREFIXES: Final = ("Describe", "List", "Get")


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
        return _DEFAULT_DELAY.get(self.kind, 0.0)

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
class _FaultState:
    fault: Fault
    seen: int = 0  # matching requests since the fault was added
    fired: int = 0


@dataclass(frozen=True)
class _Req:
    """What the layer needs to know about one AWS request."""

    service: str
    region: str
    action: str
    access_key: str
    protocol: str  # "query" | "json"
    form: tuple[tuple[str, str], ...]  # query protocol parameters (body + query string)
    body: bytes
    account: str

    def param(self, name: str) -> str | None:
        for key, value in self.form:
            if key == name:
                return value
        return None


@dataclass
class _Resp:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    drip: float | None = None  # seconds between bytes (the `drip` fault)

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    def set_header(self, name: str, value: str) -> None:
        lname = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != lname]
        self.headers.append((name, value))


class _QuietHandler(WSGIRequestHandler):
    """werkzeug's handler without the per-request access log (noise in tests and demos)."""

    def log(self, type: str, message: str, *args: Any) -> None:
        log.debug("werkzeug %s: " + message, type, *args)


def _q(tag: str) -> str:
    return f"{{{RDS_NS}}}{tag}"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _xml_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _stable_id(prefix: str, *parts: str, length: int = 26) -> str:
    """A stable, unique-looking id (`ab-…`) derived from what identifies the resource."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return prefix + base64.b32encode(digest).decode().lower().rstrip("=")[:length]


def instance_automated_backup_arn(
    region: str, account_id: str, instance_id: str, instance_created: Any, partition: str = "aws"
) -> str:
    """The `DBInstanceAutomatedBackupsArn` the layer gives an instance's automated backup.

    Stable across calls and unique per instance incarnation (account, region, identifier,
    creation time), so the demo estate can predict it before the server runs.
    """
    created = _timestamp(instance_created) or ""
    suffix = _stable_id("ab-", account_id, region, instance_id, created)
    return f"arn:{partition}:rds:{region}:{account_id}:auto-backup:{suffix}"


def _encode_marker(cache_id: str, offset: int) -> str:
    raw = json.dumps({"c": cache_id, "o": offset}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_marker(marker: str) -> tuple[str, int]:
    try:
        data = json.loads(base64.urlsafe_b64decode(marker.encode()))
        cache_id, offset = str(data["c"]), int(data["o"])
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"invalid marker {marker!r}") from exc
    if offset < 0:
        raise ValueError(f"invalid marker {marker!r}")
    return cache_id, offset


def _timestamp(value: Any) -> str | None:
    strftime = getattr(value, "strftime", None)
    if strftime is None:
        return None
    return str(strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


class FakeAWS:
    """moto served on 127.0.0.1 behind the fault/pagination/overlay layer.

    Seed moto in-process first (`mock_aws().start()`, boto3 calls, `stop(remove_data=False)`),
    then `start()` this server and point boto3 (or `AWS_ENDPOINT_URL`) at `endpoint_url`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        page_size_cap: int | None = None,
    ) -> None:
        if page_size_cap is not None and page_size_cap < 1:
            raise ValueError("page_size_cap must be >= 1")
        self.host = host
        self.port = port
        self.latency = latency
        self.page_size_cap = page_size_cap
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._faults: list[_FaultState] = []
        self._calls: list[Call] = []
        self._overlays: dict[str, dict[str, Any]] = {}
        self._cluster_backups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._pages: OrderedDict[str, bytes] = OrderedDict()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._endpoint_url: str | None = None
        self._moto_app: Any = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def endpoint_url(self) -> str:
        """`http://127.0.0.1:<port>`; only valid between start() and stop()."""
        if self._endpoint_url is None:
            raise RuntimeError("FakeAWS is not running; call start() first")
        return self._endpoint_url

    def start(self) -> str:
        """Serve on a daemon thread and return the endpoint URL."""
        if self._server is not None:
            return self.endpoint_url
        # moto is slow to import and only needed to serve: `Fault`, `Call` and the helpers
        # stay importable without paying for it.
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            create_backend_app,
        )

        self._moto_app = DomainDispatcherApplication(create_backend_app)
        self._stopping.clear()
        server = make_server(
            self.host, self.port, self, threaded=True, request_handler=_QuietHandler
        )
        self._server = server
        self.port = int(server.server_address[1])
        self._endpoint_url = f"http://{self.host}:{self.port}"
        # A short poll interval keeps stop() fast (the default 0.5 s adds up in test suites).
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeAWS:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self._endpoint_url

    def stop(self) -> None:
        """Stop serving; wakes requests sleeping in a timeout/latency fault. Idempotent."""
        self._stopping.set()
        server, thread = self._server, self._thread
        self._server = self._thread = None
        self._endpoint_url = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=10)

    def __enter__(self) -> FakeAWS:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ control

    def inject_fault(self, fault: Fault) -> None:
        """Inject a failure; faults are checked in the order they were added."""
        with self._lock:
            self._faults.append(_FaultState(fault))

    def clear_faults(self) -> None:
        """Remove every fault, e.g. to show a scan recovering once AWS behaves again."""
        with self._lock:
            self._faults.clear()

    def faults(self) -> list[dict[str, Any]]:
        """The active faults with how often each matched and fired (for debugging tests)."""
        with self._lock:
            return [{**asdict(s.fault), "seen": s.seen, "fired": s.fired} for s in self._faults]

    def calls(self) -> list[Call]:
        """Every AWS request seen so far, in arrival order (control requests excluded)."""
        with self._lock:
            return list(self._calls)

    def call_counts(self) -> dict[str, int]:
        """`{"rds:DescribeDBInstances": 3, ...}`, the same keys as the report's api_calls."""
        with self._lock:
            return dict(Counter(c.key for c in self._calls))

    def reset_calls(self) -> None:
        """Forget the recorded calls, so a test or benchmark can count one scan alone."""
        with self._lock:
            self._calls.clear()

    def overlay(self, arn: str, fields: Mapping[str, Any]) -> None:
        """Patch the fields of the resource whose own ARN is `arn` in every response.

        RDS: child elements of the member element whose own ARN element (`DBInstanceArn`
        for a `DBInstance`, `DBInstanceAutomatedBackupsArn` for a backup, ...) equals
        `arn`; a value of None removes the element. KMS: `KeyMetadata` fields of DescribeKey
        when `KeyMetadata.Arn` equals `arn`. Repeated calls for one ARN merge.
        """
        with self._lock:
            self._overlays.setdefault(arn, {}).update(fields)

    def clear_overlays(self) -> None:
        """Drop every overlay: responses are moto's own again."""
        with self._lock:
            self._overlays.clear()

    def register_cluster_automated_backup(
        self, region: str, fields: Mapping[str, Any], account_id: str = DEFAULT_ACCOUNT
    ) -> dict[str, Any]:
        """Register a DBClusterAutomatedBackup (moto has none) and return it as it will be
        listed. `DBClusterIdentifier` is required; ARNs, Region, Status (`retained`),
        DbClusterResourceId and StorageEncryptionType are filled in when absent."""
        if "DBClusterIdentifier" not in fields:
            raise ValueError("DBClusterIdentifier is required")
        record = dict(fields)
        cluster_id = str(record["DBClusterIdentifier"])
        encrypted = bool(record.setdefault("StorageEncrypted", False))
        if "StorageEncryptionType" not in record:
            if not encrypted:
                record["StorageEncryptionType"] = "none"
            else:
                record["StorageEncryptionType"] = "sse-kms" if record.get("KmsKeyId") else "sse-rds"
        record.setdefault("Region", region)
        record.setdefault("Status", "retained")
        resource_id = record.setdefault(
            "DbClusterResourceId",
            _stable_id("cluster-", account_id, region, cluster_id).upper(),
        )
        record.setdefault("DBClusterArn", f"arn:aws:rds:{region}:{account_id}:cluster:{cluster_id}")
        record.setdefault(
            "DBClusterAutomatedBackupsArn",
            f"arn:aws:rds:{region}:{account_id}:cluster-auto-backup:"
            + _stable_id("cab-", account_id, region, cluster_id, str(resource_id)),
        )
        with self._lock:
            self._cluster_backups.setdefault((account_id, region), []).append(record)
            self._pages.clear()
        return dict(record)

    # ------------------------------------------------------------------ WSGI

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        body = self._read_body(environ)
        # Control requests are unsigned; every AWS request carries a SigV4 Authorization.
        if path.startswith("/_") and not environ.get("HTTP_AUTHORIZATION"):
            resp = self._control(str(environ.get("REQUEST_METHOD", "GET")), path, body)
        else:
            resp = self._aws(environ, body)
        resp.set_header("Content-Length", str(len(resp.body)))
        start_response(f"{resp.status} {_reason(resp.status)}", resp.headers)
        if resp.drip is not None:
            return self._dripping(resp.body, resp.drip)
        return [resp.body]

    def _dripping(self, body: bytes, every: float) -> Iterator[bytes]:
        for i in range(len(body)):
            if i and self._stopping.wait(every):
                return
            yield body[i : i + 1]

    @staticmethod
    def _read_body(environ: WSGIEnvironment) -> bytes:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        stream = environ.get("wsgi.input")
        if stream is None or length <= 0:
            return b""
        data: bytes = stream.read(length)
        return data

    # ------------------------------------------------------------------ control API

    def _control(self, method: str, path: str, body: bytes) -> _Resp:
        try:
            payload: Any = json.loads(body) if body.strip() else None
            result = self._control_dispatch(method, path, payload)
        except (ValueError, TypeError, KeyError) as exc:
            return _json_resp(400, {"error": str(exc)})
        if result is None:
            return _json_resp(404, {"error": f"no control endpoint {method} {path}"})
        return _json_resp(200, result)

    def _control_dispatch(self, method: str, path: str, payload: Any) -> Any:
        route = (method, path.rstrip("/"))
        if route == ("POST", "/_fault"):
            self.inject_fault(Fault.from_json(payload))
            return {"ok": True}
        if route == ("DELETE", "/_fault"):
            self.clear_faults()
            return {"ok": True}
        if route == ("GET", "/_fault"):
            return self.faults()
        if route == ("GET", "/_calls"):
            return [asdict(c) for c in self.calls()]
        if route == ("DELETE", "/_calls"):
            self.reset_calls()
            return {"ok": True}
        if route == ("GET", "/_counts"):
            return self.call_counts()
        if route == ("POST", "/_overlay"):
            self.overlay(str(payload["arn"]), dict(payload["fields"]))
            return {"ok": True}
        if route == ("DELETE", "/_overlay"):
            self.clear_overlays()
            return {"ok": True}
        if route == ("POST", "/_cluster_automated_backup"):
            return self.register_cluster_automated_backup(
                str(payload["region"]),
                dict(payload["fields"]),
                str(payload.get("account_id", DEFAULT_ACCOUNT)),
            )
        return None

    # ------------------------------------------------------------------ AWS path

    def _aws(self, environ: WSGIEnvironment, body: bytes) -> _Resp:
        req = _parse_request(environ, body)
        if self.latency > 0:
            self._stopping.wait(self.latency)
        fault, delay = self._pick_fault(req)
        if delay > 0:
            self._stopping.wait(delay)
        applied = fault.kind if fault else ("latency" if delay > 0 else None)
        if fault is not None and fault.kind == "error":
            resp = _error_resp(
                req, fault.status, fault.code, fault.message or _default_message(req, fault)
            )
        elif fault is not None and fault.kind == "malformed" and fault.body is not None:
            resp = _Resp(200, [("Content-Type", "text/xml" if req.protocol == "query"
                                else "application/x-amz-json-1.1")], fault.body.encode())
        elif fault is not None and fault.kind == "hang":
            self._stopping.wait(fault.effective_delay)
            resp = _error_resp(req, 503, "ServiceUnavailable", "the emulator stopped")
        else:
            sent_marker = _request_marker(req)
            if fault is not None and fault.kind == "cycle-marker":
                req = _first_page(req)
                environ = _with_query(environ, "") if req.protocol == "query" else environ
            try:
                resp = self._handle(environ, req)
            except Exception as exc:  # a moto bug must not kill the server
                log.debug("emulator: %s %s failed", req.service, req.action, exc_info=True)
                resp = _error_resp(req, 500, "InternalFailure", f"{type(exc).__name__}: {exc}")
            if fault is not None and resp.status == 200:
                resp = _hostile(fault, req, resp, sent_marker)
        if req.service:
            with self._lock:
                self._calls.append(Call(req.service, req.region, req.action, resp.status, applied))
        return resp

    def _pick_fault(self, req: _Req) -> tuple[Fault | None, float]:
        """First firing non-latency fault, plus the summed delay of the firing ones."""
        if not req.service:
            return None, 0.0
        raw = req.body.decode("utf-8", "replace")
        haystacks = (raw, unquote_plus(raw))
        chosen: Fault | None = None
        delay = 0.0
        with self._lock:
            for state in self._faults:
                f = state.fault
                if f.service != req.service or f.action not in ("*", req.action):
                    continue
                if f.region is not None and f.region != req.region:
                    continue
                if f.match is not None and not any(f.match in h for h in haystacks):
                    continue
                state.seen += 1
                if f.page is not None and state.seen != f.page:
                    continue
                if f.times is not None and state.fired >= f.times:
                    continue
                if f.kind == "latency":
                    state.fired += 1
                    delay += f.effective_delay
                elif chosen is None:
                    state.fired += 1
                    chosen = f
                    if f.kind == "timeout":
                        delay += f.effective_delay
        return chosen, delay

    def _handle(self, environ: WSGIEnvironment, req: _Req) -> _Resp:
        if req.service == "rds":
            if not req.action.startswith(_READ_ONLY_PREFIXES):
                with self._lock:
                    self._pages.clear()
            if req.action in _RDS_PAGED:
                return self._rds_paged(environ, req)
            if req.action == "DescribeDBInstances":
                return self._overlay_rds(self._rds_instances(environ, req))
            resp = self._forward(environ, req.body)
            if req.action.startswith("Describe"):
                resp = self._overlay_rds(resp)
            return resp
        if req.service == "kms":
            if req.action in _KMS_PAGED:
                return self._kms_paged(environ, req)
            if req.action == "GetKeyLastUsage":
                return self._key_last_usage(req)
            resp = self._forward(environ, req.body)
            if req.action == "DescribeKey":
                resp = self._overlay_kms(resp)
            return resp
        return self._forward(environ, req.body)

    def _forward(self, environ: WSGIEnvironment, body: bytes) -> _Resp:
        """Let moto answer, with `body` as the request body."""
        env = dict(environ)
        env["wsgi.input"] = io.BytesIO(body)
        env["CONTENT_LENGTH"] = str(len(body))
        captured: dict[str, Any] = {}
        chunks: list[bytes] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            captured["status"] = int(status.split(" ", 1)[0])
            captured["headers"] = list(headers)
            return chunks.append

        result = self._moto_app(env, start_response)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        headers = [(k, v) for k, v in captured.get("headers", []) if k.lower() != "content-length"]
        return _Resp(int(captured.get("status", 500)), headers, b"".join(chunks))

    # ------------------------------------------------------------------ RDS pagination

    def _page_size(self, requested: str | None, bounds: tuple[int, int, int]) -> int:
        low, high, default = bounds
        try:
            size = int(requested) if requested is not None else default
        except ValueError:
            size = default
        size = min(max(size, low), high)
        if self.page_size_cap is not None:
            size = min(size, self.page_size_cap)
        return size

    def _rds_instances(self, environ: WSGIEnvironment, req: _Req) -> _Resp:
        """moto paginates DescribeDBInstances itself; only clamp and cap MaxRecords."""
        size = self._page_size(req.param("MaxRecords"), _RDS_MAX_RECORDS)
        form = [(k, v) for k, v in req.form if k != "MaxRecords"] + [("MaxRecords", str(size))]
        return self._forward(_with_query(environ, ""), urlencode(form).encode())

    def _rds_paged(self, environ: WSGIEnvironment, req: _Req) -> _Resp:
        list_tag, _member_tag = _RDS_PAGED[req.action]
        size = self._page_size(req.param("MaxRecords"), _RDS_MAX_RECORDS)
        marker = req.param("Marker")
        offset = 0
        full: bytes | None = None
        if marker:
            try:
                cache_id, offset = _decode_marker(marker)
            except ValueError as exc:
                return _error_resp(req, 400, "InvalidParameterValue", str(exc))
            with self._lock:
                full = self._pages.get(cache_id)
        else:
            cache_id = secrets.token_hex(8)
        if full is None:
            resp = self._rds_full_listing(environ, req)
            if resp.status != 200:
                return resp
            full = resp.body
            with self._lock:
                self._pages[cache_id] = full
                while len(self._pages) > _PAGE_CACHE_SIZE:
                    self._pages.popitem(last=False)
        root = _parse_xml(full)
        result = root.find(_q(f"{req.action}Result"))
        container = result.find(_q(list_tag)) if result is not None else None
        if result is None or container is None:
            return _xml_resp(200, full)
        members = list(container)
        for child in members:
            container.remove(child)
        for child in members[offset : offset + size]:
            container.append(child)
        for old in result.findall(_q("Marker")):
            result.remove(old)
        if offset + size < len(members):
            ET.SubElement(result, _q("Marker")).text = _encode_marker(cache_id, offset + size)
        self._apply_rds_overlays(root)
        return _xml_resp(200, _serialize(root))

    def _rds_full_listing(self, environ: WSGIEnvironment, req: _Req) -> _Resp:
        """The whole listing (moto's, or the layer's own), before slicing into pages."""
        if req.action == "DescribeDBClusterAutomatedBackups":
            return self._cluster_backups_listing(req)
        form = [(k, v) for k, v in req.form if k not in ("MaxRecords", "Marker")]
        resp = self._forward(_with_query(environ, ""), urlencode(form).encode())
        if resp.status == 200 and req.action == "DescribeDBInstanceAutomatedBackups":
            root = _parse_xml(resp.body)
            self._enrich_instance_backups(root, req)
            resp = _Resp(200, resp.headers, _serialize(root))
        return resp

    # ------------------------------------------------------------------ automated backups

    def _enrich_instance_backups(self, root: ET.Element, req: _Req) -> None:
        """Give moto's bare {identifier, status} entries the fields AWS returns.

        Active entries are read from the live instance; retained ones from the copy of the
        deleted instance that moto keeps inside its automated snapshot. Aurora members and
        instances with BackupRetentionPeriod 0 are dropped, as AWS does not list them.
        """
        from moto.rds.models import rds_backends

        backend = rds_backends[req.account][req.region]
        container = root.find(
            f"{_q('DescribeDBInstanceAutomatedBackupsResult')}/{_q('DBInstanceAutomatedBackups')}"
        )
        if container is None:
            return
        partition = str(getattr(backend, "partition", "aws"))
        for member in list(container):
            ident = member.findtext(_q("DBInstanceIdentifier")) or ""
            status = member.findtext(_q("Status")) or ""
            db = backend.databases.get(ident) if status == "active" else None
            if db is None:
                snaps = [
                    s
                    for s in list(backend.database_snapshots.values())
                    if s.snapshot_type == "automated" and s.db_instance_identifier == ident
                ]
                snaps.sort(key=lambda s: s.created)
                db = snaps[-1].database if snaps else None
            if db is None:
                continue
            retention = int(getattr(db, "backup_retention_period", 0) or 0)
            if getattr(db, "db_cluster_identifier", None) or retention == 0:
                container.remove(member)
                continue
            encrypted = bool(db.storage_encrypted)
            created = _timestamp(getattr(db, "created", None)) or ""
            values: dict[str, Any] = {
                "DBInstanceArn": db.db_instance_arn,
                "DbiResourceId": db.dbi_resource_id,
                "Region": req.region,
                "Encrypted": encrypted,
                "StorageEncryptionType": "sse-kms" if encrypted else "none",
                "BackupRetentionPeriod": retention,
                "Engine": db.engine,
                "EngineVersion": getattr(db, "engine_version", None),
                "AllocatedStorage": getattr(db, "allocated_storage", None),
                "Port": getattr(db, "port", None),
                "AvailabilityZone": getattr(db, "availability_zone", None),
                "MasterUsername": getattr(db, "master_username", None),
                "StorageType": getattr(db, "storage_type", None),
                "InstanceCreateTime": created or None,
                "DBInstanceAutomatedBackupsArn": instance_automated_backup_arn(
                    req.region, req.account, ident, getattr(db, "created", None), partition
                ),
            }
            if encrypted and db.kms_key_id:
                values["KmsKeyId"] = db.kms_key_id
            for name, value in values.items():
                if value is not None and member.find(_q(name)) is None:
                    ET.SubElement(member, _q(name)).text = _xml_text(value)

    def _cluster_backups_listing(self, req: _Req) -> _Resp:
        with self._lock:
            records = [dict(r) for r in self._cluster_backups.get((req.account, req.region), [])]
        cluster_id = req.param("DBClusterIdentifier")
        resource_id = req.param("DbClusterResourceId")
        if cluster_id is not None:
            records = [r for r in records if r.get("DBClusterIdentifier") == cluster_id]
        if resource_id is not None:
            records = [r for r in records if r.get("DbClusterResourceId") == resource_id]
        if not records and (cluster_id or resource_id):
            return _error_resp(
                req,
                404,
                "DBClusterAutomatedBackupNotFoundFault",
                f"No automated backup found for cluster {cluster_id or resource_id}",
            )
        root = ET.Element(_q("DescribeDBClusterAutomatedBackupsResponse"))
        result = ET.SubElement(root, _q("DescribeDBClusterAutomatedBackupsResult"))
        container = ET.SubElement(result, _q("DBClusterAutomatedBackups"))
        for record in records:
            member = ET.SubElement(container, _q("DBClusterAutomatedBackup"))
            for name, value in record.items():
                _append_value(member, name, value)
        meta = ET.SubElement(root, _q("ResponseMetadata"))
        ET.SubElement(meta, _q("RequestId")).text = str(uuid.uuid4())
        return _xml_resp(200, _serialize(root))

    # ------------------------------------------------------------------ overlays

    def _overlays_snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {arn: dict(f) for arn, f in self._overlays.items()}

    def _overlay_rds(self, resp: _Resp) -> _Resp:
        if resp.status != 200:
            return resp
        overlays = self._overlays_snapshot()
        if not any(arn.encode() in resp.body for arn in overlays):
            return resp
        root = _parse_xml(resp.body)
        self._apply_rds_overlays(root, overlays)
        return _Resp(resp.status, resp.headers, _serialize(root))

    def _apply_rds_overlays(
        self, root: ET.Element, overlays: dict[str, dict[str, Any]] | None = None
    ) -> None:
        overlays = self._overlays_snapshot() if overlays is None else overlays
        if not overlays:
            return
        for elem in root.iter():
            name = _local(elem.tag)
            for own in (f"{name}Arn", f"{name}sArn"):
                arn = elem.findtext(_q(own))
                if arn is not None and arn in overlays:
                    _patch_xml(elem, overlays[arn])
                    break

    def _overlay_kms(self, resp: _Resp) -> _Resp:
        if resp.status != 200:
            return resp
        overlays = self._overlays_snapshot()
        if not overlays:
            return resp
        data = json.loads(resp.body)
        meta = data.get("KeyMetadata") if isinstance(data, dict) else None
        if not isinstance(meta, dict) or meta.get("Arn") not in overlays:
            return resp
        for name, value in overlays[str(meta["Arn"])].items():
            if value is None:
                meta.pop(name, None)
            else:
                meta[name] = value
        return _json_aws_resp(200, data, resp.headers)

    def _key_last_usage(self, req: _Req) -> _Resp:
        """moto has no GetKeyLastUsage (a 2025 KMS API): answer as AWS does for a key with no
        cryptographic use recorded since tracking began (KeyLastUsage absent)."""
        try:
            key_id = str(json.loads(req.body or b"{}").get("KeyId", ""))
        except ValueError:
            key_id = ""
        overlay = self._overlays_snapshot().get(key_id, {})
        payload: dict[str, Any] = {"KeyId": key_id, "TrackingStartDate": 1735689600.0}
        usage = overlay.get("KeyLastUsage")
        if isinstance(usage, Mapping):
            payload["KeyLastUsage"] = dict(usage)
        return _json_aws_resp(200, payload, [])

    # ------------------------------------------------------------------ KMS pagination

    def _kms_paged(self, environ: WSGIEnvironment, req: _Req) -> _Resp:
        key, low, high, default = _KMS_PAGED[req.action]
        try:
            params = json.loads(req.body) if req.body.strip() else {}
        except ValueError:
            return self._forward(environ, req.body)
        limit = params.pop("Limit", None)
        marker = params.pop("Marker", None)
        size = self._page_size(None if limit is None else str(limit), (low, high, default))
        offset = 0
        full: bytes | None = None
        if marker:
            try:
                cache_id, offset = _decode_marker(str(marker))
            except ValueError as exc:
                return _error_resp(req, 400, "InvalidMarkerException", str(exc))
            with self._lock:
                full = self._pages.get(cache_id)
        else:
            cache_id = secrets.token_hex(8)
        if full is None:
            resp = self._forward(environ, json.dumps(params).encode())
            if resp.status != 200:
                return resp
            full = resp.body
            with self._lock:
                self._pages[cache_id] = full
                while len(self._pages) > _PAGE_CACHE_SIZE:
                    self._pages.popitem(last=False)
        data = json.loads(full)
        items = list(data.get(key, []))
        page: dict[str, Any] = {k: v for k, v in data.items() if k not in (key, "NextMarker")}
        page[key] = items[offset : offset + size]
        page["Truncated"] = offset + size < len(items)
        if page["Truncated"]:
            page["NextMarker"] = _encode_marker(cache_id, offset + size)
        return _json_aws_resp(200, page, [])


# ---------------------------------------------------------------------- hostile answers


def _request_marker(req: _Req) -> str | None:
    if req.protocol == "query":
        return req.param("Marker") or req.param("NextToken")
    data = _json_or_none(req.body)
    if isinstance(data, dict):
        for name in ("Marker", "NextToken"):
            if isinstance(data.get(name), str):
                return str(data[name])
    return None


def _first_page(req: _Req) -> _Req:
    """The request without its marker: a `cycle-marker` answer is always the first page."""
    if req.protocol == "query":
        form = tuple((k, v) for k, v in req.form if k not in ("Marker", "NextToken"))
        return replace(req, form=form, body=urlencode(form).encode())
    data = _json_or_none(req.body)
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in ("Marker", "NextToken")}
        return replace(req, body=json.dumps(data).encode())
    return req


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body.strip() else {}
    except ValueError:
        return None


def _next_cycle_marker(mode: str, sent: str | None) -> str:
    step = 0
    if sent is not None and sent.startswith(_CYCLE_PREFIX):
        try:
            step = int(sent[len(_CYCLE_PREFIX):])
        except ValueError:
            step = 0
    if mode == "alternate":
        return f"{_CYCLE_PREFIX}{2 if step == 1 else 1}"
    return f"{_CYCLE_PREFIX}{step + 1}"


def _hostile(fault: Fault, req: _Req, resp: _Resp, sent_marker: str | None) -> _Resp:
    """A 200 answer made hostile the way `fault` says (see `Fault`)."""
    kind = fault.kind
    if kind == "malformed":
        return _Resp(200, resp.headers, resp.body[: max(1, len(resp.body) // 2)])
    if kind == "drip":
        return _Resp(resp.status, resp.headers, resp.body, drip=fault.effective_delay)
    if kind not in ("cycle-marker", "wrong-type", "surrogate", "escape"):
        return resp
    if req.protocol == "json":
        data = _json_or_none(resp.body)
        if data is None:
            return resp
        return _json_aws_resp(200, _hostile_json(fault, req, data, sent_marker), resp.headers)
    try:
        root = _parse_xml(resp.body)
    except ET.ParseError:
        return resp
    body = _serialize_any(_hostile_xml(fault, req, root, sent_marker))
    if kind == "surrogate":
        # XML 1.0 cannot carry a lone surrogate: the reference is what a hostile server sends.
        body = body.replace(_SURROGATE_MARK.encode(), b"&#xD800;")
    return _Resp(200, resp.headers, body)


def _hostile_json(fault: Fault, req: _Req, data: Any, sent_marker: str | None) -> Any:
    kind = fault.kind
    if kind == "cycle-marker":
        if isinstance(data, dict):
            marker = _next_cycle_marker(fault.mode or "alternate", sent_marker)
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
            return _set_json(data, fault.field, _json_value(fault.value))
        return _retype_json(data)
    payload = SURROGATE_TEXT if kind == "surrogate" else ESCAPE_TEXT
    return _taint_json(data, fault.field, payload)


def _json_value(text: str | None) -> Any:
    if text is None:
        return "seven"
    try:
        return json.loads(text)
    except ValueError:
        return text


def _set_json(data: Any, name: str, value: Any) -> Any:
    if isinstance(data, dict):
        return {k: value if k == name else _set_json(v, name, value) for k, v in data.items()}
    if isinstance(data, list):
        return [_set_json(v, name, value) for v in data]
    return data


def _retype_json(data: Any) -> Any:
    """Every number and boolean as text: well-formed JSON, wrong types everywhere."""
    if isinstance(data, dict):
        return {k: _retype_json(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_retype_json(v) for v in data]
    if isinstance(data, bool):
        return "yes" if data else "no"
    if isinstance(data, int | float):
        return "seven"
    return data


def _taint_json(data: Any, name: str | None, payload: str, key: str | None = None) -> Any:
    if isinstance(data, dict):
        return {k: _taint_json(v, name, payload, k) for k, v in data.items()}
    if isinstance(data, list):
        return [_taint_json(v, name, payload, key) for v in data]
    if isinstance(data, str) and (name is None or key == name) and key not in (
            "NextMarker", "NextToken"):
        return data + payload
    return data


_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_DATE = re.compile(r"\d{4}-\d\d-\d\dT")


def _hostile_xml(fault: Fault, req: _Req, root: ET.Element,
                 sent_marker: str | None) -> ET.Element:
    kind = fault.kind
    result = next((e for e in root if _local(e.tag).endswith("Result")), None)
    ns = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else ""
    if kind == "cycle-marker":
        if result is not None:
            for old in [e for e in result if _local(e.tag) in ("Marker", "NextToken")]:
                result.remove(old)
            tag = "NextToken" if req.service == "ec2" else "Marker"
            marker = ET.SubElement(result, f"{{{ns}}}{tag}" if ns else tag)
            marker.text = _next_cycle_marker(fault.mode or "alternate", sent_marker)
        return root
    if kind == "wrong-type":
        if (fault.mode or "fields") != "fields":
            # Query answers wrap their data in …Result; EC2's sit under the root itself.
            dropped = [result] if result is not None else [
                e for e in root if _local(e.tag) not in ("requestId", "RequestId")]
            for elem in dropped:
                root.remove(elem)
            return root
        for elem in root.iter():
            if len(elem) or elem.text is None:
                continue
            if fault.field is not None:
                if _local(elem.tag) == fault.field:
                    elem.text = fault.value if fault.value is not None else "seven"
            elif _NUMBER.fullmatch(elem.text):
                elem.text = "seven"
            elif _DATE.match(elem.text):
                elem.text = "not-a-date"
        return root
    payload = _SURROGATE_MARK if kind == "surrogate" else ESCAPE_XML_TEXT
    for elem in (result if result is not None else root).iter():
        if len(elem) or not elem.text or _local(elem.tag) in ("Marker", "NextToken"):
            continue
        if fault.field is None or _local(elem.tag) == fault.field:
            elem.text += payload
    return root


def _serialize_any(root: ET.Element) -> bytes:
    """An answer of any query service, in its own default namespace."""
    if root.tag.startswith("{"):
        ns = root.tag[1:].split("}", 1)[0]
        data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False,
                                  default_namespace=ns)
        return data
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=False))


# ---------------------------------------------------------------------- helpers


def _parse_request(environ: WSGIEnvironment, body: bytes) -> _Req:
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    query = str(environ.get("QUERY_STRING", ""))
    form_pairs = parse_qsl(query, keep_blank_values=True)
    match = _CREDENTIAL_RE.search(auth) or _CREDENTIAL_RE.search(
        "Credential=" + dict(form_pairs).get("X-Amz-Credential", "")
    )
    access_key, region, service = ("", "", "")
    if match:
        access_key, region, service = match.group(1), match.group(3), match.group(4).lower()
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    content_type = str(environ.get("CONTENT_TYPE", ""))
    if target:
        protocol = "json"
        action = target.rsplit(".", 1)[-1]
    else:
        protocol = "query"
        if content_type.startswith("application/x-www-form-urlencoded"):
            form_pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        action = dict(form_pairs).get("Action", "")
    headers_account = str(environ.get("HTTP_X_MOTO_ACCOUNT_ID", ""))
    return _Req(
        service=service,
        region=region,
        action=action,
        access_key=access_key,
        protocol=protocol,
        form=tuple(form_pairs),
        body=body,
        account=_account_for(access_key, headers_account),
    )


def _account_for(access_key: str, header_account: str) -> str:
    """The account moto will serve this request from (same precedence as moto itself)."""
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    if header_account:
        return header_account
    if not access_key:
        return DEFAULT_ACCOUNT
    from moto.iam.models import get_account_id_from

    return str(get_account_id_from(access_key))


def _with_query(environ: WSGIEnvironment, query: str) -> WSGIEnvironment:
    """The request as a form POST (parameters from the query string move into the body)."""
    env = dict(environ)
    env["QUERY_STRING"] = query
    env["REQUEST_METHOD"] = "POST"
    env["CONTENT_TYPE"] = "application/x-www-form-urlencoded; charset=utf-8"
    return env


def _parse_xml(body: bytes) -> ET.Element:
    # Only ever moto's own output or the layer's, never input from outside the process.
    return ET.fromstring(body)  # noqa: S314


def _serialize(root: ET.Element) -> bytes:
    # default_namespace keeps moto's `xmlns="http://rds.amazonaws.com/doc/2014-10-31/"`
    # instead of ElementTree's `ns0:` prefixes, without touching the global registry.
    data: bytes = ET.tostring(
        root, encoding="utf-8", xml_declaration=False, default_namespace=RDS_NS
    )
    return data


def _append_value(parent: ET.Element, name: str, value: Any) -> None:
    if value is None:
        return
    elem = ET.SubElement(parent, _q(name))
    if name == "TagList" and isinstance(value, list):
        for tag in value:
            tag_elem = ET.SubElement(elem, _q("Tag"))
            ET.SubElement(tag_elem, _q("Key")).text = str(tag["Key"])
            ET.SubElement(tag_elem, _q("Value")).text = str(tag["Value"])
    elif isinstance(value, list):
        member = name[:-1] if name.endswith("s") else "member"
        for item in value:
            ET.SubElement(elem, _q(member)).text = _xml_text(item)
    else:
        elem.text = _xml_text(value)


def _patch_xml(elem: ET.Element, patch: Mapping[str, Any]) -> None:
    for name, value in patch.items():
        existing = elem.find(_q(name))
        if value is None:
            if existing is not None:
                elem.remove(existing)
            continue
        if existing is None:
            existing = ET.SubElement(elem, _q(name))
        for child in list(existing):
            existing.remove(child)
        if isinstance(value, Mapping):
            # A structure (e.g. MasterUserSecret {SecretArn, SecretStatus, KmsKeyId}).
            existing.text = None
            _patch_xml(existing, value)
            continue
        if isinstance(value, list):
            # A list of structures, each in a member element named for one item
            # (DBInstanceAutomatedBackupsReplications > DBInstanceAutomatedBackupsReplication).
            existing.text = None
            for item in value:
                member = ET.SubElement(existing, _q(name[:-1] if name.endswith("s") else
                                                    "member"))
                if isinstance(item, Mapping):
                    _patch_xml(member, item)
                else:
                    member.text = _xml_text(item)
            continue
        existing.text = _xml_text(value)


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _json_resp(status: int, payload: Any) -> _Resp:
    return _Resp(status, [("Content-Type", "application/json")], json.dumps(payload).encode())


def _json_aws_resp(status: int, payload: Any, headers: list[tuple[str, str]]) -> _Resp:
    kept = [(k, v) for k, v in headers if k.lower() not in ("content-type", "content-length")]
    kept.append(("Content-Type", "application/x-amz-json-1.1"))
    return _Resp(status, kept, json.dumps(payload).encode())


def _xml_resp(status: int, body: bytes) -> _Resp:
    return _Resp(status, [("Content-Type", "text/xml")], body)


def _default_message(req: _Req, fault: Fault) -> str:
    if "AccessDenied" in fault.code or fault.code == "UnauthorizedOperation":
        return (
            f"User: arn:aws:iam::{req.account}:user/rdsaudit is not authorized to perform: "
            f"{req.service}:{req.action} because no identity-based policy allows the "
            f"{req.service}:{req.action} action"
        )
    if "Throttl" in fault.code:
        return "Rate exceeded"
    return f"Injected fault {fault.code} for {req.service}:{req.action}"


def _error_resp(req: _Req, status: int, code: str, message: str) -> _Resp:
    """An error in the exact wire shape botocore's parser for the protocol expects."""
    request_id = str(uuid.uuid4())
    if req.protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        return _Resp(
            status,
            [
                ("Content-Type", "application/x-amz-json-1.1"),
                ("x-amzn-ErrorType", code),
                ("x-amzn-RequestId", request_id),
            ],
            body,
        )
    if req.service == "ec2":
        root = ET.Element("Response")
        error = ET.SubElement(ET.SubElement(root, "Errors"), "Error")
        ET.SubElement(error, "Code").text = code
        ET.SubElement(error, "Message").text = message
        ET.SubElement(root, "RequestID").text = request_id
        xml = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    else:
        ns = _QUERY_NS.get(req.service)
        root = ET.Element("ErrorResponse", {"xmlns": ns} if ns else {})
        error = ET.SubElement(root, "Error")
        ET.SubElement(error, "Type").text = "Receiver" if status >= 500 else "Sender"
        ET.SubElement(error, "Code").text = code
        ET.SubElement(error, "Message").text = message
        ET.SubElement(root, "RequestId").text = request_id
        xml = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return _Resp(status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], xml)
