"""No secret leaves the process: sentinel credentials, served back by a hostile fake AWS in
every way the adversarial pass found, appear in no byte of stdout, stderr, any report format,
the saved inventory or the history database."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from rdsaudit.demo.emulator import FakeAWS, Fault
from rdsaudit.redact import (
    MASK,
    RedactingFilter,
    for_terminal,
    forget_credentials,
    redact,
    redact_data,
    remember_credentials,
    remember_session,
)
from tests.support.hostile import (
    CALLER_KEY_ID,
    CALLER_SECRET,
    CALLER_TOKEN,
    OTHER_ACCOUNT,
    ROLE_KEY_ID,
    ROLE_SECRET,
    ROLE_TOKEN,
    assume_role_body,
    leaks,
    run,
    small_estate,
)

ALL = "json,html,csv,junit,sarif"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAWS]:
    with small_estate() as (served, _key):
        yield served


def _scan(fake: FakeAWS, tmp: Path, *extra: str) -> tuple[int, str, list[str]]:
    out = tmp / "out"
    proc = run(fake, "scan", "--regions", "us-east-1", "--output-dir", out, "--format", ALL,
               "--save-inventory", out / "inventory.json", "--history", out / "h.sqlite3",
               "--fail-on", "critical", *extra)
    return proc.returncode, proc.stderr.decode("utf-8", "replace"), leaks(proc, out)


def test_truncated_assume_role_answer_leaks_nothing(fake: FakeAWS, tmp_path: Path) -> None:
    body = assume_role_body()
    # Cut inside the session token: the body is not XML, botocore's error embeds it.
    truncated = body[: body.index(ROLE_TOKEN) + 40]
    fake.inject_fault(Fault("sts", "AssumeRole", kind="malformed", body=truncated))
    try:
        code, stderr, found = _scan(fake, tmp_path, "--accounts", OTHER_ACCOUNT,
                                    "--role-name", "audit")
    finally:
        fake.clear_faults()
    assert found == []
    assert code == 3, stderr
    assert f"{OTHER_ACCOUNT} us-east-1 sts:AssumeRole: MalformedResponse" in stderr
    doc = json.loads((tmp_path / "out" / "rdsaudit-report.json").read_text())
    assert [e["operation"] for e in doc["errors"]] == ["AssumeRole"]


def test_credentials_echoed_back_in_error_messages_are_redacted(fake: FakeAWS,
                                                                tmp_path: Path) -> None:
    """A server that quotes every credential the process holds, the headers it was sent and
    a key-id-shaped string, in the error messages of every listing."""
    echo = (f"caller {CALLER_KEY_ID} {CALLER_SECRET} {CALLER_TOKEN}; role {ROLE_KEY_ID} "
            f"{ROLE_SECRET} {ROLE_TOKEN}; other AKIAIOSFODNN7EXAMPLE; "
            f"Authorization: AWS4-HMAC-SHA256 Credential=AKIAQSENTINELCALLER1/2026/x, "
            f"Signature=deadbeefcafe; X-Amz-Security-Token: {CALLER_TOKEN[:50]}")
    fake.inject_fault(Fault("sts", "AssumeRole", kind="malformed", body=assume_role_body()))
    fake.inject_fault(Fault("rds", "DescribeDBInstances", code="InvalidParameterValue",
                            status=400, message=echo))
    fake.inject_fault(Fault("kms", "ListAliases", code="ValidationException", status=400,
                            message=echo))
    try:
            code, stderr, found = _scan(fake, tmp_path, "--accounts", OTHER_ACCOUNT,
                                    "--role-name", "audit")
    finally:
        fake.clear_faults()
    assert found == []
    extra = leaks_of(tmp_path, ["AKIAIOSFODNN7EXAMPLE", "deadbeefcafe"])
    assert extra == []
    assert code == 3, stderr
    assert "DescribeDBInstances: InvalidParameterValue: caller [REDACTED]" in stderr
    # The account was scanned with the role's credentials, which came from AssumeRole.
    doc = json.loads((tmp_path / "out" / "rdsaudit-report.json").read_text())
    assert doc["scan"]["accounts"] == [OTHER_ACCOUNT]
    assert doc["summary"]["resources_total"] > 0


def leaks_of(tmp: Path, texts: list[str]) -> list[str]:
    found = []
    for path in (tmp / "out").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{t} in {path}" for t in texts if t.encode() in data]
    return found


def test_no_raw_body_in_a_parse_error(fake: FakeAWS, tmp_path: Path) -> None:
    fake.inject_fault(Fault("rds", "DescribeDBSnapshots", kind="malformed",
                            body=f"<DescribeDBSnapshotsResponse><x>{CALLER_SECRET[:20]}"
                                 "PLAINBODYTEXT"))
    try:
        code, stderr, _ = _scan(fake, tmp_path)
    finally:
        fake.clear_faults()
    assert code == 3, stderr
    assert "PLAINBODYTEXT" not in stderr
    assert leaks_of(tmp_path, ["PLAINBODYTEXT"]) == []
    assert "DescribeDBSnapshots: MalformedResponse: the response could not be parsed" in stderr


# -- the redaction step itself ---------------------------------------------------------------


@pytest.fixture
def remembered() -> Iterator[None]:
    remember_credentials(CALLER_KEY_ID, CALLER_SECRET, CALLER_TOKEN, "short")
    yield
    forget_credentials()


@pytest.mark.parametrize("text", [
    f"x {CALLER_SECRET} y",
    f"{CALLER_TOKEN}",
    "ASIAABCDEFGHIJKLMNOP in the middle",
    "<SecretAccessKey>abcdefghijklmnopqrstuvwxyz0123456789ABCD</SecretAccessKey>",
    '{"SessionToken": "FwoGZXIvYXdzEPartialTokenValue+/=="}',
    "aws_secret_access_key=abcdefghijklmnop0123456789",
    "Authorization: AWS4-HMAC-SHA256 Credential=X/20261201/us-east-1/rds/aws4_request, "
    "SignedHeaders=host, Signature=0123456789abcdef",
    "https://x/?X-Amz-Security-Token=FQoGZXIvYXdzEXAMPLE&X-Amz-Signature=abcdef0123",
])
def test_redact_removes_secrets(remembered: None, text: str) -> None:
    out = redact(text)
    assert MASK in out
    for secret in (CALLER_SECRET, CALLER_TOKEN, "ASIAABCDEFGHIJKLMNOP",
                   "abcdefghijklmnopqrstuvwxyz0123456789ABCD", "FwoGZXIvYXdzEPartialTokenValue",
                   "abcdefghijklmnop0123456789", "0123456789abcdef", "FQoGZXIvYXdzEXAMPLE",
                   "abcdef0123"):
        assert secret not in out


def test_redact_keeps_ordinary_text(remembered: None) -> None:
    text = ("arn:aws:rds:us-east-1:123456789012:db:short-name key alias/rds-key state "
            "Enabled token-less")
    assert redact(text) == text  # "short" is too short to be a secret worth hunting
    assert redact_data({"a": [text, 1, None], text: True}) == {"a": [text, 1, None], text: True}


def test_redact_data_reaches_every_string_and_keeps_the_shape(remembered: None) -> None:
    """Keys, values in dicts, lists, tuples and other mappings, at any depth; a dict met twice
    stays one shared object; the input is not changed."""
    from types import MappingProxyType

    shared = {"arn": f"x{CALLER_SECRET}", "n": 1, "f": 1.5, "b": True, "none": None}
    doc = {"resources": [shared, shared], CALLER_SECRET: [("t", CALLER_SECRET)],
           "proxy": MappingProxyType({"k": [CALLER_SECRET, {"deep": CALLER_SECRET}]}), 7: "v"}
    out = redact_data(doc)
    assert CALLER_SECRET not in repr(out) and CALLER_SECRET in repr(doc)
    assert out["resources"][0] is out["resources"][1]
    assert out["resources"][0] == {"arn": "x[REDACTED]", "n": 1, "f": 1.5, "b": True,
                                   "none": None}
    assert out["[REDACTED]"] == [["t", "[REDACTED]"]]
    assert out["proxy"] == {"k": ["[REDACTED]", {"deep": "[REDACTED]"}]} and out[7] == "v"
    # In place (the CLI's own document, held by no one else): the same result, in the same
    # dicts and lists where their keys stay as they are.
    resources = doc["resources"]
    again = redact_data(doc, in_place=True)
    assert again == out and CALLER_SECRET not in repr(again)
    assert again["resources"] is resources and resources[0] is shared is resources[1]
    assert shared["arn"] == "x[REDACTED]"


def test_log_records_are_redacted(remembered: None) -> None:
    record = logging.LogRecord("botocore", logging.DEBUG, __file__, 1, "body %s",
                               (f"<x>{CALLER_SECRET}</x>\x1b[2J",), None)
    RedactingFilter().filter(record)
    assert CALLER_SECRET not in record.getMessage()
    assert "\x1b" not in record.getMessage()


def test_terminal_text_shows_controls_as_escapes() -> None:
    shown = for_terminal("a\x1b]0;title\x07b\x9bc\u202ed\u2066e\ud800f\nok\tok")
    assert shown == "a\\x1b]0;title\\x07b\\x9bc\\u202ed\\u2066e\\ud800f\nok\tok"


def test_credentials_refreshed_mid_scan_are_redacted_too() -> None:
    """A profile with an assumed role (or SSO, a container role) gets new values when its
    session expires; those are secrets as soon as botocore holds them."""
    from datetime import UTC, datetime

    import boto3
    from botocore.credentials import RefreshableCredentials

    forget_credentials()
    first = ("ASIAFIRSTFIRSTFIRST1", "first-secret-" + "a" * 30, "first-token-" + "b" * 90)
    second = ("ASIASECONDSECONDSEC2", "second-secret-" + "c" * 30, "second-token-" + "d" * 90)

    def metadata(values: tuple[str, str, str]) -> dict[str, str]:
        return {"access_key": values[0], "secret_key": values[1], "token": values[2],
                "expiry_time": "2999-01-01T00:00:00Z"}

    credentials = RefreshableCredentials.create_from_metadata(
        metadata(first), lambda: metadata(second), "test")
    session = boto3.Session()
    session._session._credentials = credentials  # what a profile's provider chain returns
    try:
        remember_session(session)
        assert redact(first[1]) == MASK and redact(first[2]) == MASK
        assert redact(second[1]) == second[1]  # not issued yet
        credentials._expiry_time = datetime(2000, 1, 1, tzinfo=UTC)  # the session expires
        assert credentials.get_frozen_credentials().secret_key == second[1]  # refreshed
        assert redact(f"x {second[1]} y") == f"x {MASK} y"
        assert redact(second[2]) == MASK and redact(first[1]) == MASK
    finally:
        forget_credentials()
