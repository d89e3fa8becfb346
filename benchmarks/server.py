"""The benchmark's fake AWS: a seeded estate served with latency, throttling and call counts.

Runs in its own process (seeding in-process through moto's backends is ~30x faster than over
HTTP, moto-fidelity §9) and prints one JSON line with its endpoint once it is ready:

    .venv/bin/python benchmarks/server.py --size 10000 --latency 0.05

It stops by itself when its standard input closes (the benchmark runner holds the other
end) or after `--max-seconds`, whichever comes first.

`BenchAWS` is `rdsaudit.demo.emulator.FakeAWS` (latency, counting, AWS-shaped errors, the
listings moto cannot page) with what a benchmark needs on top. Without the first four the
emulator, not the scanner, is what gets measured (`--plain` serves without them; the
numbers are in results.md):

* **keep-alive**: served by an HTTP/1.1 server that keeps connections open, as AWS
  endpoints do; werkzeug's development server answers `Connection: close` to every request.
* **frozen listings**: each RDS listing is rendered by moto once, cut into its members, and
  every page is then assembled from bytes. FakeAWS parses the whole cached listing again
  for every page it serves, which is quadratic in the listing's length. The estate is
  read-only during a benchmark, so freezing is safe.
* **O(1) snapshot attributes**: moto finds a snapshot for Describe*SnapshotAttributes by
  filtering every snapshot of the region (O(n) per call, O(n²) per scan); patched in this
  process only to a dictionary look-up.
* **memoised answers**: attribute and KMS answers depend only on the request while the
  estate is frozen; a warm-up scan (latency 0) makes each once.
* **throttling**: `POST /_throttle {"op": "kms:DescribeKey", "rate": 20}` lets that
  operation through at most `rate` times a second per region (token bucket, burst 1) and
  answers the rest with the service's throttling error (`ThrottlingException` for KMS,
  `Throttling` for RDS), as AWS does.
* **the scan window**: `GET /_window` gives the time from the first AWS request's arrival to
  the last response, i.e. the scan as the server saw it (no interpreter start-up, no
  report writing), and the answers by operation and status; `GET /_cpu` the server's CPU.
* **parse cost**: `GET /_parse_time` parses every successful response body of the window
  with botocore's parsers configured as rdsaudit configures them, single-threaded.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode
from wsgiref.types import WSGIEnvironment

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rdsaudit.demo.emulator import FakeAWS, Fault
from rdsaudit.demo.emulator.paging import decode_marker, encode_marker
from rdsaudit.demo.emulator.wire import (
    Request,
    Response,
    error_resp,
    parse_request,
    parse_xml,
    rds_tag,
    serialize,
    with_query,
    xml_resp,
)

_LISTINGS = frozenset({
    "DescribeDBInstances", "DescribeDBClusters", "DescribeDBSnapshots",
    "DescribeDBClusterSnapshots", "DescribeDBInstanceAutomatedBackups",
    "DescribeDBClusterAutomatedBackups",
})
# Answers that depend only on the request while the estate is frozen: served from memory
# after the first time (moto takes 2-5 ms of the server's one interpreter for each).
_MEMO = frozenset({"DescribeDBSnapshotAttributes", "DescribeDBClusterSnapshotAttributes",
                   "DescribeKey", "GetKeyRotationStatus"})
_MEMBERS = b"@@members@@"
_MARKER = b"@@marker@@"


@dataclass
class _Frozen:
    """A listing cut into member elements: pages are prefix + members + marker + suffix."""

    prefix: bytes
    middle: bytes
    suffix: bytes
    members: list[bytes]
    arns: list[str]  # each member's own ARN, in listing order


class _Bucket:
    """Token bucket: `rate` tokens a second, at most `burst` banked."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def patch_moto_attribute_lookups() -> None:
    """Describe*SnapshotAttributes by dictionary look-up instead of a filter over all."""
    from moto.rds.exceptions import DBClusterSnapshotNotFoundError, DBSnapshotNotFoundFault
    from moto.rds.models import RDSBackend

    def db(self: Any, db_snapshot_identifier: str) -> dict[str, list[str]]:
        snap = self.database_snapshots.get(db_snapshot_identifier)
        if snap is None:
            raise DBSnapshotNotFoundFault(db_snapshot_identifier)
        return snap.attributes  # type: ignore[no-any-return]

    def cluster(self: Any, db_cluster_snapshot_identifier: str) -> dict[str, list[str]]:
        snap = self.cluster_snapshots.get(db_cluster_snapshot_identifier)
        if snap is None:
            raise DBClusterSnapshotNotFoundError(db_cluster_snapshot_identifier)
        return snap.attributes  # type: ignore[no-any-return]

    RDSBackend.describe_db_snapshot_attributes = db  # type: ignore[method-assign]
    RDSBackend.describe_db_cluster_snapshot_attributes = cluster  # type: ignore[method-assign]


class _KeepAlive(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, as AWS endpoints do, in front of the WSGI app.

    werkzeug's development server closes every connection (`Connection: close`), which
    costs each call a TCP connection on both sides and a server thread: AWS's endpoints
    keep connections open, and botocore reuses them.
    """

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms ACK stall
    timeout = 60  # an idle keep-alive connection's thread ends after this

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        address = self.server.server_address
        assert isinstance(address, tuple)
        host, port = address[0], address[1]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command, "PATH_INFO": unquote(path), "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)), "SERVER_NAME": str(host),
            "SERVER_PORT": str(port), "SERVER_PROTOCOL": self.request_version,
            "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http", "wsgi.version": (1, 0), "wsgi.multithread": True,
            "wsgi.multiprocess": False, "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = name.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[f"HTTP_{key}"] = value
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Any:
            answer["status"], answer["headers"] = status, headers
            return None

        data = b"".join(self.server.app(environ, start_response))  # type: ignore[attr-defined]
        code, _, reason = str(answer["status"]).partition(" ")
        self.send_response(int(code), reason)
        for name, value in answer["headers"]:
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: Any) -> None:
        super().__init__(address, _KeepAlive)
        self.app = app

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up on a slow answer (a read timeout) is not the server's error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class BenchAWS(FakeAWS):
    def __init__(self, latency: float = 0.05, capture: bool = True, plain: bool = False,
                 memo: frozenset[str] = _MEMO) -> None:
        super().__init__(latency=latency)
        self.memo_actions = memo
        self.capture = capture
        # plain: FakeAWS as it is (werkzeug, every page cut from the whole listing, moto
        # for every answer), to measure what the benchmark's workarounds are worth.
        self.plain = plain
        self._frozen: dict[tuple[Any, ...], tuple[str, _Frozen]] = {}
        self._frozen_ids: dict[str, _Frozen] = {}
        self._freeze_lock = threading.Lock()
        self._freezing: dict[tuple[Any, ...], threading.Lock] = {}
        self._throttles: dict[str, float] = {}
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._first: float | None = None
        self._last: float | None = None
        self._bodies: list[tuple[str, str, bytes]] = []
        self._memo: dict[tuple[Any, ...], Response] = {}

    def start(self) -> str:
        """FakeAWS.start, on a keep-alive HTTP/1.1 server instead of werkzeug's."""
        if self.plain:
            return super().start()
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            create_backend_app,
        )

        self._moto_app = DomainDispatcherApplication(create_backend_app)
        self._stopping.clear()
        server = _Server((self.host, self.port), self)
        self._server = server  # type: ignore[assignment]
        self.port = int(server.server_address[1])
        self._endpoint_url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(target=server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self._endpoint_url

    # -- control ---------------------------------------------------------------------------

    def throttle(self, op: str, rate: float | None) -> None:
        with self._lock:
            if rate is None:
                self._throttles.pop(op, None)
            else:
                self._throttles[op] = rate
            self._buckets = {k: b for k, b in self._buckets.items() if k[1] != op}

    def reset_window(self) -> None:
        with self._lock:
            self._first = self._last = None
            self._bodies = []
            self._calls.clear()

    def window(self) -> dict[str, Any]:
        with self._lock:
            first, last = self._first, self._last
            statuses: dict[str, dict[str, int]] = {}
            for c in self._calls:
                by = statuses.setdefault(c.key, {})
                by[str(c.status)] = by.get(str(c.status), 0) + 1
        span = (last - first) if first is not None and last is not None else None
        return {"seconds": span, "statuses": statuses}

    def order(self) -> list[dict[str, Any]]:
        """Every frozen listing: region, action, parameters and item ARNs in order."""
        with self._freeze_lock:
            return [{"region": key[1], "action": key[2],
                     "params": {k: v for k, v in key[3] if k not in ("Action", "Version")},
                     "arns": frozen.arns}
                    for key, (_, frozen) in self._frozen.items()]

    def plain_cost(self) -> dict[str, Any]:
        """What FakeAWS's pagination would cost on the largest listing: it parses the whole
        cached listing and serialises one page for every page it serves."""
        with self._freeze_lock:
            if not self._frozen:
                return {}
            key, (_, frozen) = max(self._frozen.items(), key=lambda kv: len(kv[1][1].members))
        full = b"".join((frozen.prefix, *frozen.members, frozen.middle, frozen.suffix))
        start = time.process_time()
        root = parse_xml(full)
        result = root.find(rds_tag(f"{key[2]}Result"))
        assert result is not None
        container = next(c for c in result if c.tag != rds_tag("Marker"))
        members = list(container)
        for child in members:
            container.remove(child)
        for child in members[:100]:
            container.append(child)
        serialize(root)
        per_page = time.process_time() - start
        pages = max(1, -(-len(frozen.members) // 100))
        return {"listing": f"{key[2]} {key[1]}", "items": len(frozen.members),
                "bytes": len(full), "seconds_per_page": per_page, "pages": pages,
                "seconds_per_listing": per_page * pages}

    def parse_time(self) -> dict[str, Any]:
        """Parse every captured response body with botocore, configured as rdsaudit does."""
        import botocore.session
        from botocore.parsers import ResponseParserFactory

        from rdsaudit.collect.answers import parse_timestamp

        factory = ResponseParserFactory()
        factory.set_parser_defaults(timestamp_parser=parse_timestamp)

        with self._lock:
            bodies = list(self._bodies)
        session = botocore.session.get_session()
        models: dict[str, Any] = {}
        parsers: dict[str, Any] = {}
        total = 0.0
        failed = 0
        for service, action, body in bodies:
            model = models.get(service)
            if model is None:
                model = models[service] = session.get_service_model(service)
                parsers[service] = factory.create_parser(model.metadata["protocol"])
            shape = model.operation_model(action).output_shape
            start = time.perf_counter()
            try:
                parsers[service].parse({"body": body, "headers": {}, "status_code": 200},
                                       shape)
            except Exception:  # noqa: BLE001 - counted, not fatal: a figure, not a test
                failed += 1
            total += time.perf_counter() - start
        return {"seconds": total, "responses": len(bodies), "failed": failed,
                "bytes": sum(len(b) for _, _, b in bodies)}

    def _control_dispatch(self, method: str, path: str, payload: Any) -> Any:
        route = (method, path.rstrip("/"))
        if route == ("POST", "/_throttle"):
            self.throttle(str(payload["op"]), float(payload["rate"]))
            return {"ok": True}
        if route == ("DELETE", "/_throttle"):
            for op in list(self._throttles):
                self.throttle(op, None)
            return {"ok": True}
        if route == ("GET", "/_window"):
            return self.window()
        if route == ("DELETE", "/_window"):
            self.reset_window()
            return {"ok": True}
        if route == ("GET", "/_order"):
            return self.order()
        if route == ("GET", "/_cpu"):
            return {"seconds": time.process_time()}
        if route == ("GET", "/_plain_cost"):
            return self.plain_cost()
        if route == ("GET", "/_parse_time"):
            return self.parse_time()
        if route == ("POST", "/_latency"):
            self.latency = float(payload["latency"])
            return {"ok": True}
        return super()._control_dispatch(method, path, payload)

    # -- AWS path --------------------------------------------------------------------------

    def _aws(self, environ: WSGIEnvironment, body: bytes) -> Response:
        now = time.monotonic()
        with self._lock:
            if self._first is None:
                self._first = now
        resp = super()._aws(environ, body)
        end = time.monotonic()
        keep = self.capture and resp.status == 200
        req = parse_request(environ, body) if keep else None
        with self._lock:
            self._last = end
            if req is not None and req.service:
                self._bodies.append((req.service, req.action, resp.body))
        return resp

    def _pick_fault(self, req: Request) -> tuple[Fault | None, float]:
        fault, delay = super()._pick_fault(req)
        if fault is not None:
            return fault, delay
        key = f"{req.service}:{req.action}"
        with self._lock:
            rate = self._throttles.get(key)
            if rate is None:
                return None, delay
            bucket = self._buckets.get((req.region, key))
            if bucket is None:
                bucket = self._buckets[(req.region, key)] = _Bucket(rate, 1.0)
            allowed = bucket.take()
        if allowed:
            return None, delay
        code = "ThrottlingException" if req.protocol == "json" else "Throttling"
        return Fault(service=req.service, action=req.action, code=code, status=400,
                     message="Rate exceeded"), delay

    def handle(self, environ: WSGIEnvironment, req: Request) -> Response:
        if self.plain:
            return super().handle(environ, req)
        if req.service == "rds" and req.action in _LISTINGS:
            return self._frozen_page(environ, req)
        if req.action not in self.memo_actions:
            return super().handle(environ, req)
        key = (req.account, req.region, req.service, req.action,
               tuple(sorted(req.form)) if req.protocol == "query" else req.body)
        with self._lock:
            known = self._memo.get(key)
        if known is not None:
            return Response(known.status, list(known.headers), known.body)
        resp = super().handle(environ, req)
        if resp.status == 200:
            with self._lock:
                self._memo[key] = resp
        return resp

    def _frozen_page(self, environ: WSGIEnvironment, req: Request) -> Response:
        size = self._page_size(req.param("MaxRecords"), (20, 100, 100))
        marker = req.param("Marker")
        if marker:
            try:
                cache_id, offset = decode_marker(marker)
            except ValueError as exc:
                return error_resp(req, 400, "InvalidParameterValue", str(exc))
            frozen = self._frozen_ids.get(cache_id)
            if frozen is None:
                return error_resp(req, 400, "InvalidParameterValue", "unknown marker")
        else:
            offset = 0
            found = self._freeze(environ, req)
            if isinstance(found, Response):
                return found
            cache_id, frozen = found
        end = offset + size
        more = end < len(frozen.members)
        tag = b"<Marker>" + encode_marker(cache_id, end).encode() + b"</Marker>"
        body = b"".join((frozen.prefix, *frozen.members[offset:end], frozen.middle,
                         tag if more else b"", frozen.suffix))
        return xml_resp(200, body)

    def _freeze(self, environ: WSGIEnvironment, req: Request) -> tuple[str, _Frozen] | Response:
        key = (req.account, req.region, req.action,
               tuple(sorted((k, v) for k, v in req.form if k not in ("Marker", "MaxRecords"))))
        with self._freeze_lock:
            known = self._frozen.get(key)
            if known is not None:
                return known
            lock = self._freezing.setdefault(key, threading.Lock())
        with lock:  # one rendering per listing; listings render side by side
            with self._freeze_lock:
                known = self._frozen.get(key)
            if known is not None:
                return known
            if req.action == "DescribeDBInstances":
                form = [(k, v) for k, v in req.form if k not in ("Marker", "MaxRecords")]
                form.append(("MaxRecords", "100000000"))
                resp = self._forward(with_query(environ, ""), urlencode(form).encode())
            else:
                resp = self._rds_full_listing(environ, req)
            if resp.status != 200:
                return resp
            frozen = _cut(resp.body, req.action)
            with self._freeze_lock:
                cache_id = f"f{len(self._frozen)}"
                self._frozen[key] = (cache_id, frozen)
                self._frozen_ids[cache_id] = frozen
            return cache_id, frozen


def _cut(body: bytes, action: str) -> _Frozen:
    root = parse_xml(body)
    result = root.find(rds_tag(f"{action}Result"))
    assert result is not None, action
    container = next(c for c in result if c.tag != rds_tag("Marker"))
    members = [serialize(m) for m in list(container)]
    arns = [_own_arn(m) for m in list(container)]
    for child in list(container):
        container.remove(child)
    for old in result.findall(rds_tag("Marker")):
        result.remove(old)
    container.text = _MEMBERS.decode()
    container.tail = _MARKER.decode()
    text = serialize(root)
    prefix, rest = text.split(_MEMBERS, 1)
    middle, suffix = rest.split(_MARKER, 1)
    return _Frozen(prefix, middle, suffix, members, arns)


def _own_arn(member: ET.Element) -> str:
    name = member.tag.rsplit("}", 1)[-1]
    for own in (f"{name}Arn", f"{name}sArn"):
        text = member.findtext(rds_tag(own))
        if text:
            return text
    return ""


# -- process ---------------------------------------------------------------------------------


def _warm(fake: BenchAWS, regions: tuple[str, ...]) -> None:
    """Scan once (latency 0): every listing rendered, every memoised answer made, so the
    benchmark measures serving, not moto."""
    import boto3
    from botocore.config import Config

    from rdsaudit.collect import ScanRequest, scan
    from rdsaudit.collect.specs import LISTINGS

    session = boto3.Session(aws_access_key_id="bench", aws_secret_access_key="bench",  # noqa: S106
                            region_name=regions[0])
    # Render the listings one at a time first: side by side in one interpreter, the largest
    # would take longer than a client waits.
    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=600)
    for region in regions:
        rds = session.client("rds", region_name=region, endpoint_url=fake.endpoint_url,
                             config=config)
        for spec in LISTINGS:
            getattr(rds, spec.method)(**spec.params)
    inventory = scan(session, ScanRequest(regions=list(regions), endpoint_url=fake.endpoint_url,
                                          workers=16))
    if inventory.errors:
        raise RuntimeError(f"warm-up scan failed: {inventory.errors[:3]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--size", type=int, default=0)
    ap.add_argument("--org", type=int, metavar="ACCOUNTS",
                    help="serve an Organization of ACCOUNTS accounts (benchmarks/organization.py) "
                         "instead of a --size estate")
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--max-seconds", type=float, default=1800)
    ap.add_argument("--no-capture", action="store_true")
    ap.add_argument("--plain", action="store_true",
                    help="serve as plain FakeAWS does (no frozen pages, memo or keep-alive)")
    args = ap.parse_args(argv)

    os.environ.setdefault("MOTO_RDS_SNAPSHOT_LIMIT", "10000000")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "bench")
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    import estate
    from moto import mock_aws

    if args.org:
        return _serve_org(args)
    started = time.perf_counter()
    mock = mock_aws()
    mock.start()
    try:
        seeded = estate.seed(args.size)
    finally:
        mock.stop(remove_data=False)
    seed_s = time.perf_counter() - started
    if not args.plain:
        patch_moto_attribute_lookups()
    fake = BenchAWS(latency=0.0, capture=not args.no_capture, plain=args.plain)
    fake.start()
    try:
        for region, fields in seeded.cluster_backups:
            fake.register_cluster_automated_backup(region, fields, account_id=estate.ACCOUNT)
        t = time.perf_counter()
        if not args.plain:
            _warm(fake, seeded.regions)
        warm_s = time.perf_counter() - t
        fake.latency = args.latency
        fake.reset_window()
        print(json.dumps({"endpoint": fake.endpoint_url, "pid": os.getpid(),
                          "resources": seeded.resources, "regions": list(seeded.regions),
                          "seed_seconds": round(seed_s, 2), "warm_seconds": round(warm_s, 2)}),
              flush=True)
        _serve_until_stdin_closes(args.max_seconds)
    finally:
        fake.stop()
    return 0


# Besides _MEMO, what an Organization scan asks of every account: the same answer each time
# while the estate is frozen (AssumeRole included: the role's credentials stay valid).
_ORG_MEMO = _MEMO | frozenset({"ListKeys", "ListAliases", "DescribeTrails", "GetTrailStatus",
                               "GetEventSelectors", "AssumeRole", "ListAccounts",
                               "DescribeDBSnapshotAttributes", "GetKeyLastUsage"})


def _serve_org(args: argparse.Namespace) -> int:
    import organization as org
    from moto import mock_aws

    started = time.perf_counter()
    mock = mock_aws()
    mock.start()
    try:
        accounts = org.seed_org(args.org)
    finally:
        mock.stop(remove_data=False)
    seed_s = time.perf_counter() - started
    patch_moto_attribute_lookups()
    fake = BenchAWS(latency=0.0, capture=not args.no_capture, memo=_ORG_MEMO)
    fake.start()
    try:
        t = time.perf_counter()
        org.warm_org(fake.endpoint_url, org.REGIONS)
        warm_s = time.perf_counter() - t
        fake.latency = args.latency
        fake.reset_window()
        print(json.dumps({"endpoint": fake.endpoint_url, "pid": os.getpid(),
                          "accounts": accounts, "regions": list(org.REGIONS),
                          "seed_seconds": round(seed_s, 2), "warm_seconds": round(warm_s, 2)}),
              flush=True)
        _serve_until_stdin_closes(args.max_seconds)
    finally:
        fake.stop()
    return 0


def _serve_until_stdin_closes(max_seconds: float) -> None:
    """Stop when the runner closes our stdin, or at the deadline: never outlive it."""
    done = threading.Event()

    def watch_stdin() -> None:
        sys.stdin.read()
        done.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    done.wait(max_seconds)


if __name__ == "__main__":
    raise SystemExit(main())
