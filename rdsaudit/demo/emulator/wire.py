"""The wire: AWS requests and responses as the layer sees them, and their XML and JSON.

Query-protocol services (RDS, STS) speak form-encoded requests and namespaced XML answers;
KMS speaks JSON. Everything here is pure: parse a WSGI request, build a response, shape an
AWS error (XML for the query services, JSON for KMS) as AWS does."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl
from wsgiref.types import WSGIEnvironment

from werkzeug.serving import WSGIRequestHandler

log = logging.getLogger(__name__)


RDS_NS: Final = "http://rds.amazonaws.com/doc/2014-10-31/"


QUERY_NS: Final[dict[str, str]] = {
    "rds": RDS_NS,
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
}


DEFAULT_ACCOUNT: Final = "123456789012"  # moto's default account


_CREDENTIAL_RE: Final = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request")


@dataclass(frozen=True)
class Request:
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
class Response:
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


class QuietHandler(WSGIRequestHandler):
    """werkzeug's handler without the per-request access log (noise in tests and demos)."""

    def log(self, type: str, message: str, *args: Any) -> None:
        log.debug("werkzeug %s: " + message, type, *args)


def rds_tag(tag: str) -> str:
    return f"{{{RDS_NS}}}{tag}"


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def xml_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def stable_id(prefix: str, *parts: str, length: int = 26) -> str:
    """A stable, unique-looking id (`ab-…`) derived from what identifies the resource."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return prefix + base64.b32encode(digest).decode().lower().rstrip("=")[:length]


def iso_timestamp(value: Any) -> str | None:
    strftime = getattr(value, "strftime", None)
    if strftime is None:
        return None
    return str(strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def serialize_any(root: ET.Element) -> bytes:
    """An answer of any query service, in its own default namespace."""
    if root.tag.startswith("{"):
        ns = root.tag[1:].split("}", 1)[0]
        data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False,
                                  default_namespace=ns)
        return data
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=False))


def parse_request(environ: WSGIEnvironment, body: bytes) -> Request:
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
    return Request(
        service=service,
        region=region,
        action=action,
        access_key=access_key,
        protocol=protocol,
        form=tuple(form_pairs),
        body=body,
        account=account_for(access_key, headers_account),
    )


def account_for(access_key: str, header_account: str) -> str:
    """The account moto will serve this request from (same precedence as moto itself)."""
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    if header_account:
        return header_account
    if not access_key:
        return DEFAULT_ACCOUNT
    from moto.iam.models import get_account_id_from

    return str(get_account_id_from(access_key))


def with_query(environ: WSGIEnvironment, query: str) -> WSGIEnvironment:
    """The request as a form POST (parameters from the query string move into the body)."""
    env = dict(environ)
    env["QUERY_STRING"] = query
    env["REQUEST_METHOD"] = "POST"
    env["CONTENT_TYPE"] = "application/x-www-form-urlencoded; charset=utf-8"
    return env


def parse_xml(body: bytes) -> ET.Element:
    # Only ever moto's own output or the layer's, never input from outside the process.
    return ET.fromstring(body)  # noqa: S314


def serialize(root: ET.Element) -> bytes:
    # default_namespace keeps moto's `xmlns="http://rds.amazonaws.com/doc/2014-10-31/"`
    # instead of ElementTree's `ns0:` prefixes, without touching the global registry.
    data: bytes = ET.tostring(
        root, encoding="utf-8", xml_declaration=False, default_namespace=RDS_NS
    )
    return data


def append_value(parent: ET.Element, name: str, value: Any) -> None:
    if value is None:
        return
    elem = ET.SubElement(parent, rds_tag(name))
    if name == "TagList" and isinstance(value, list):
        for tag in value:
            tag_elem = ET.SubElement(elem, rds_tag("Tag"))
            ET.SubElement(tag_elem, rds_tag("Key")).text = str(tag["Key"])
            ET.SubElement(tag_elem, rds_tag("Value")).text = str(tag["Value"])
    elif isinstance(value, list):
        member = name[:-1] if name.endswith("s") else "member"
        for item in value:
            ET.SubElement(elem, rds_tag(member)).text = xml_text(item)
    else:
        elem.text = xml_text(value)


def patch_xml(elem: ET.Element, patch: Mapping[str, Any]) -> None:
    for name, value in patch.items():
        existing = elem.find(rds_tag(name))
        if value is None:
            if existing is not None:
                elem.remove(existing)
            continue
        if existing is None:
            existing = ET.SubElement(elem, rds_tag(name))
        for child in list(existing):
            existing.remove(child)
        if isinstance(value, Mapping):
            # A structure (e.g. MasterUserSecret {SecretArn, SecretStatus, KmsKeyId}).
            existing.text = None
            patch_xml(existing, value)
            continue
        if isinstance(value, list):
            # A list of structures, each in a member element named for one item
            # (DBInstanceAutomatedBackupsReplications > DBInstanceAutomatedBackupsReplication).
            existing.text = None
            for item in value:
                member = ET.SubElement(existing, rds_tag(name[:-1] if name.endswith("s") else
                                                    "member"))
                if isinstance(item, Mapping):
                    patch_xml(member, item)
                else:
                    member.text = xml_text(item)
            continue
        existing.text = xml_text(value)


def reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def json_resp(status: int, payload: Any) -> Response:
    return Response(status, [("Content-Type", "application/json")], json.dumps(payload).encode())


def json_aws_resp(status: int, payload: Any, headers: list[tuple[str, str]]) -> Response:
    kept = [(k, v) for k, v in headers if k.lower() not in ("content-type", "content-length")]
    kept.append(("Content-Type", "application/x-amz-json-1.1"))
    return Response(status, kept, json.dumps(payload).encode())


def xml_resp(status: int, body: bytes) -> Response:
    return Response(status, [("Content-Type", "text/xml")], body)


def error_resp(req: Request, status: int, code: str, message: str) -> Response:
    """An error in the exact wire shape botocore's parser for the protocol expects."""
    request_id = str(uuid.uuid4())
    if req.protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        return Response(
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
        ns = QUERY_NS.get(req.service)
        root = ET.Element("ErrorResponse", {"xmlns": ns} if ns else {})
        error = ET.SubElement(root, "Error")
        ET.SubElement(error, "Type").text = "Receiver" if status >= 500 else "Sender"
        ET.SubElement(error, "Code").text = code
        ET.SubElement(error, "Message").text = message
        ET.SubElement(root, "RequestId").text = request_id
        xml = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return Response(status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], xml)
