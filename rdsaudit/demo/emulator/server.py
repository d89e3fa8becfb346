"""`FakeAWS`: moto's server on 127.0.0.1 behind the layer (see the package's docstring).

Size (~800 lines): one class whose request handler dispatches to a method per AWS behaviour
moto lacks (paging, cluster automated backups, backup enrichment, overlays, faults); the
pure parts are in `wire`, `faults` and `paging`.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
import threading
import uuid
import xml.etree.ElementTree as ET
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict
from types import TracebackType
from typing import Any, Final
from urllib.parse import unquote_plus, urlencode
from wsgiref.types import StartResponse, WSGIEnvironment

from werkzeug.serving import BaseWSGIServer, make_server

from rdsaudit.demo.emulator.faults import (
    Call,
    Fault,
    FaultState,
    default_message,
    first_page,
    hostile,
    request_marker,
)
from rdsaudit.demo.emulator.paging import (
    KMS_PAGED,
    PAGE_CACHE_SIZE,
    RDS_MAX_RECORDS,
    RDS_PAGED,
    decode_marker,
    encode_marker,
)
from rdsaudit.demo.emulator.wire import (
    DEFAULT_ACCOUNT,
    QuietHandler,
    Request,
    Response,
    append_value,
    error_resp,
    iso_timestamp,
    json_aws_resp,
    json_resp,
    local_name,
    parse_request,
    parse_xml,
    patch_xml,
    rds_tag,
    reason,
    serialize,
    stable_id,
    with_query,
    xml_resp,
    xml_text,
)

log = logging.getLogger(__name__)





_READ_ONLY_PREFIXES: Final = ("Describe", "List", "Get")






















def instance_automated_backup_arn(
    region: str, account_id: str, instance_id: str, instance_created: Any, partition: str = "aws"
) -> str:
    """The `DBInstanceAutomatedBackupsArn` the layer gives an instance's automated backup.

    Stable across calls and unique per instance incarnation (account, region, identifier,
    creation time), so the demo estate can predict it before the server runs.
    """
    created = iso_timestamp(instance_created) or ""
    suffix = stable_id("ab-", account_id, region, instance_id, created)
    return f"arn:{partition}:rds:{region}:{account_id}:auto-backup:{suffix}"








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
        self._faults: list[FaultState] = []
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
            self.host, self.port, self, threaded=True, request_handler=QuietHandler
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
            self._faults.append(FaultState(fault))

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
            stable_id("cluster-", account_id, region, cluster_id).upper(),
        )
        record.setdefault("DBClusterArn", f"arn:aws:rds:{region}:{account_id}:cluster:{cluster_id}")
        record.setdefault(
            "DBClusterAutomatedBackupsArn",
            f"arn:aws:rds:{region}:{account_id}:cluster-auto-backup:"
            + stable_id("cab-", account_id, region, cluster_id, str(resource_id)),
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
        start_response(f"{resp.status} {reason(resp.status)}", resp.headers)
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

    def _control(self, method: str, path: str, body: bytes) -> Response:
        try:
            payload: Any = json.loads(body) if body.strip() else None
            result = self._control_dispatch(method, path, payload)
        except (ValueError, TypeError, KeyError) as exc:
            return json_resp(400, {"error": str(exc)})
        if result is None:
            return json_resp(404, {"error": f"no control endpoint {method} {path}"})
        return json_resp(200, result)

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

    def _aws(self, environ: WSGIEnvironment, body: bytes) -> Response:
        req = parse_request(environ, body)
        if self.latency > 0:
            self._stopping.wait(self.latency)
        fault, delay = self._pick_fault(req)
        if delay > 0:
            self._stopping.wait(delay)
        applied = fault.kind if fault else ("latency" if delay > 0 else None)
        if fault is not None and fault.kind == "error":
            resp = error_resp(
                req, fault.status, fault.code, fault.message or default_message(req, fault)
            )
        elif fault is not None and fault.kind == "malformed" and fault.body is not None:
            resp = Response(200, [("Content-Type", "text/xml" if req.protocol == "query"
                                else "application/x-amz-json-1.1")], fault.body.encode())
        elif fault is not None and fault.kind == "hang":
            self._stopping.wait(fault.effective_delay)
            resp = error_resp(req, 503, "ServiceUnavailable", "the emulator stopped")
        else:
            sent_marker = request_marker(req)
            if fault is not None and fault.kind == "cycle-marker":
                req = first_page(req)
                environ = with_query(environ, "") if req.protocol == "query" else environ
            try:
                resp = self.handle(environ, req)
            except Exception as exc:  # a moto bug must not kill the server
                log.debug("emulator: %s %s failed", req.service, req.action, exc_info=True)
                resp = error_resp(req, 500, "InternalFailure", f"{type(exc).__name__}: {exc}")
            if fault is not None and resp.status == 200:
                resp = hostile(fault, req, resp, sent_marker)
        if req.service:
            with self._lock:
                self._calls.append(Call(req.service, req.region, req.action, resp.status, applied))
        return resp

    def _pick_fault(self, req: Request) -> tuple[Fault | None, float]:
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

    def handle(self, environ: WSGIEnvironment, req: Request) -> Response:
        if req.service == "rds":
            if not req.action.startswith(_READ_ONLY_PREFIXES):
                with self._lock:
                    self._pages.clear()
            if req.action in RDS_PAGED:
                return self._rds_paged(environ, req)
            if req.action == "DescribeDBInstances":
                return self._overlay_rds(self._rds_instances(environ, req))
            resp = self._forward(environ, req.body)
            if req.action.startswith("Describe"):
                resp = self._overlay_rds(resp)
            return resp
        if req.service == "kms":
            if req.action in KMS_PAGED:
                return self._kms_paged(environ, req)
            if req.action == "GetKeyLastUsage":
                return self._key_last_usage(req)
            resp = self._forward(environ, req.body)
            if req.action == "DescribeKey":
                resp = self._overlay_kms(resp)
            return resp
        return self._forward(environ, req.body)

    def _forward(self, environ: WSGIEnvironment, body: bytes) -> Response:
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
        return Response(int(captured.get("status", 500)), headers, b"".join(chunks))

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

    def _rds_instances(self, environ: WSGIEnvironment, req: Request) -> Response:
        """moto paginates DescribeDBInstances itself; only clamp and cap MaxRecords."""
        size = self._page_size(req.param("MaxRecords"), RDS_MAX_RECORDS)
        form = [(k, v) for k, v in req.form if k != "MaxRecords"] + [("MaxRecords", str(size))]
        return self._forward(with_query(environ, ""), urlencode(form).encode())

    def _cached_listing(self, req: Request, marker: str | None, invalid_code: str,
                        fetch: Callable[[], Response]) -> tuple[str, int, bytes] | Response:
        """The whole listing a page is cut from, and where the page starts: the first page
        fetches it from moto (`fetch`) and caches it under a new id that its markers carry;
        later pages find it by their marker (an evicted listing is fetched again). An error
        answer when the marker is not one of ours or moto's answer is not a success."""
        offset = 0
        full: bytes | None = None
        if marker:
            try:
                cache_id, offset = decode_marker(marker)
            except ValueError as exc:
                return error_resp(req, 400, invalid_code, str(exc))
            with self._lock:
                full = self._pages.get(cache_id)
        else:
            cache_id = secrets.token_hex(8)
        if full is None:
            resp = fetch()
            if resp.status != 200:
                return resp
            full = resp.body
            with self._lock:
                self._pages[cache_id] = full
                while len(self._pages) > PAGE_CACHE_SIZE:
                    self._pages.popitem(last=False)
        return cache_id, offset, full

    def _rds_paged(self, environ: WSGIEnvironment, req: Request) -> Response:
        list_tag, _member_tag = RDS_PAGED[req.action]
        size = self._page_size(req.param("MaxRecords"), RDS_MAX_RECORDS)
        cached = self._cached_listing(req, req.param("Marker"), "InvalidParameterValue",
                                      lambda: self._rds_full_listing(environ, req))
        if isinstance(cached, Response):
            return cached
        cache_id, offset, full = cached
        root = parse_xml(full)
        result = root.find(rds_tag(f"{req.action}Result"))
        container = result.find(rds_tag(list_tag)) if result is not None else None
        if result is None or container is None:
            return xml_resp(200, full)
        members = list(container)
        for child in members:
            container.remove(child)
        for child in members[offset : offset + size]:
            container.append(child)
        for old in result.findall(rds_tag("Marker")):
            result.remove(old)
        if offset + size < len(members):
            ET.SubElement(result, rds_tag("Marker")).text = encode_marker(cache_id, offset + size)
        self._apply_rds_overlays(root)
        return xml_resp(200, serialize(root))

    def _rds_full_listing(self, environ: WSGIEnvironment, req: Request) -> Response:
        """The whole listing (moto's, or the layer's own), before slicing into pages."""
        if req.action == "DescribeDBClusterAutomatedBackups":
            return self._cluster_backups_listing(req)
        form = [(k, v) for k, v in req.form if k not in ("MaxRecords", "Marker")]
        resp = self._forward(with_query(environ, ""), urlencode(form).encode())
        if resp.status == 200 and req.action == "DescribeDBInstanceAutomatedBackups":
            root = parse_xml(resp.body)
            self._enrich_instance_backups(root, req)
            resp = Response(200, resp.headers, serialize(root))
        return resp

    # ------------------------------------------------------------------ automated backups

    def _enrich_instance_backups(self, root: ET.Element, req: Request) -> None:
        """Give moto's bare {identifier, status} entries the fields AWS returns.

        Active entries are read from the live instance; retained ones from the copy of the
        deleted instance that moto keeps inside its automated snapshot. Aurora members and
        instances with BackupRetentionPeriod 0 are dropped, as AWS does not list them.
        """
        from moto.rds.models import rds_backends

        backend = rds_backends[req.account][req.region]
        container = root.find(
            f"{rds_tag('DescribeDBInstanceAutomatedBackupsResult')}/{rds_tag('DBInstanceAutomatedBackups')}"
        )
        if container is None:
            return
        partition = str(getattr(backend, "partition", "aws"))
        for member in list(container):
            ident = member.findtext(rds_tag("DBInstanceIdentifier")) or ""
            status = member.findtext(rds_tag("Status")) or ""
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
            created = iso_timestamp(getattr(db, "created", None)) or ""
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
                if value is not None and member.find(rds_tag(name)) is None:
                    ET.SubElement(member, rds_tag(name)).text = xml_text(value)

    def _cluster_backups_listing(self, req: Request) -> Response:
        with self._lock:
            records = [dict(r) for r in self._cluster_backups.get((req.account, req.region), [])]
        cluster_id = req.param("DBClusterIdentifier")
        resource_id = req.param("DbClusterResourceId")
        if cluster_id is not None:
            records = [r for r in records if r.get("DBClusterIdentifier") == cluster_id]
        if resource_id is not None:
            records = [r for r in records if r.get("DbClusterResourceId") == resource_id]
        if not records and (cluster_id or resource_id):
            return error_resp(
                req,
                404,
                "DBClusterAutomatedBackupNotFoundFault",
                f"No automated backup found for cluster {cluster_id or resource_id}",
            )
        root = ET.Element(rds_tag("DescribeDBClusterAutomatedBackupsResponse"))
        result = ET.SubElement(root, rds_tag("DescribeDBClusterAutomatedBackupsResult"))
        container = ET.SubElement(result, rds_tag("DBClusterAutomatedBackups"))
        for record in records:
            member = ET.SubElement(container, rds_tag("DBClusterAutomatedBackup"))
            for name, value in record.items():
                append_value(member, name, value)
        meta = ET.SubElement(root, rds_tag("ResponseMetadata"))
        ET.SubElement(meta, rds_tag("RequestId")).text = str(uuid.uuid4())
        return xml_resp(200, serialize(root))

    # ------------------------------------------------------------------ overlays

    def _overlays_snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {arn: dict(f) for arn, f in self._overlays.items()}

    def _overlay_rds(self, resp: Response) -> Response:
        if resp.status != 200:
            return resp
        overlays = self._overlays_snapshot()
        if not any(arn.encode() in resp.body for arn in overlays):
            return resp
        root = parse_xml(resp.body)
        self._apply_rds_overlays(root, overlays)
        return Response(resp.status, resp.headers, serialize(root))

    def _apply_rds_overlays(
        self, root: ET.Element, overlays: dict[str, dict[str, Any]] | None = None
    ) -> None:
        overlays = self._overlays_snapshot() if overlays is None else overlays
        if not overlays:
            return
        for elem in root.iter():
            name = local_name(elem.tag)
            for own in (f"{name}Arn", f"{name}sArn"):
                arn = elem.findtext(rds_tag(own))
                if arn is not None and arn in overlays:
                    patch_xml(elem, overlays[arn])
                    break

    def _overlay_kms(self, resp: Response) -> Response:
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
        return json_aws_resp(200, data, resp.headers)

    def _key_last_usage(self, req: Request) -> Response:
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
        return json_aws_resp(200, payload, [])

    # ------------------------------------------------------------------ KMS pagination

    def _kms_paged(self, environ: WSGIEnvironment, req: Request) -> Response:
        key, low, high, default = KMS_PAGED[req.action]
        try:
            params = json.loads(req.body) if req.body.strip() else {}
        except ValueError:
            return self._forward(environ, req.body)
        limit = params.pop("Limit", None)
        marker = params.pop("Marker", None)
        size = self._page_size(None if limit is None else str(limit), (low, high, default))
        cached = self._cached_listing(req, None if marker is None else str(marker),
                                      "InvalidMarkerException",
                                      lambda: self._forward(environ, json.dumps(params).encode()))
        if isinstance(cached, Response):
            return cached
        cache_id, offset, full = cached
        data = json.loads(full)
        items = list(data.get(key, []))
        page: dict[str, Any] = {k: v for k, v in data.items() if k not in (key, "NextMarker")}
        page[key] = items[offset : offset + size]
        page["Truncated"] = offset + size < len(items)
        if page["Truncated"]:
            page["NextMarker"] = encode_marker(cache_id, offset + size)
        return json_aws_resp(200, page, [])


# ---------------------------------------------------------------------- hostile answers




























# ---------------------------------------------------------------------- helpers


























