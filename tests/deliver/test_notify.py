"""`--notify`: one short message to a webhook (a server on 127.0.0.1) or an SNS topic (moto
behind the emulator, read back through an SQS subscription), through the installed CLI.

The estate is hostile where it can be: a tag value that is a Slack mention and a link, a
database whose name is made to look like one, sentinel credentials in the environment,
a webhook URL whose path is its token. None of it may reach the message, stderr or the
reports; a failed delivery is a recorded error (exit 3) with the reports kept.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from rdsaudit.demo.emulator import FakeAWS, Fault
from tests.cli.test_cli import one_line_error
from tests.e2e.test_scan import run as run_text
from tests.support.hostile import PW, SENTINELS, leaks, run

REGION = "us-east-1"
ACCOUNT = "123456789012"
HOSTILE_TAG = "<!channel> see <https://evil.example/x|the fix> tagvalue-7f3a"
TOKEN = "T0000/B0000/WebhookSecretToken7f3a"
TOPIC = "rdsaudit-alerts"
QUEUE = "rdsaudit-alerts-inbox"


@dataclass
class Estate:
    fake: FakeAWS
    plain_arn: str  # the unencrypted instance
    topic_arn: str
    queue_url: str


@pytest.fixture(scope="module")
def estate() -> Iterator[Estate]:
    from moto import mock_aws

    mock = mock_aws()
    mock.start()
    try:
        kms = boto3.client("kms", region_name=REGION)
        rds = boto3.client("rds", region_name=REGION)
        key = kms.create_key()["KeyMetadata"]
        kms.enable_key_rotation(KeyId=key["KeyId"])
        rds.create_db_instance(DBInstanceIdentifier="enc-db", Engine="postgres",
                               DBInstanceClass="db.t3.micro", StorageEncrypted=True,
                               KmsKeyId=key["Arn"], **PW)
        plain = rds.create_db_instance(
            DBInstanceIdentifier="plain-db", Engine="mysql", DBInstanceClass="db.t3.micro",
            Tags=[{"Key": "owner", "Value": HOSTILE_TAG}], **PW)["DBInstance"]
        topic = boto3.client("sns", region_name=REGION).create_topic(Name=TOPIC)["TopicArn"]
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
            "QueueArn"])["Attributes"]["QueueArn"]
        boto3.client("sns", region_name=REGION).subscribe(TopicArn=topic, Protocol="sqs",
                                                          Endpoint=queue_arn)
    finally:
        mock.stop(remove_data=False)
    fake = FakeAWS()
    fake.start()
    try:
        yield Estate(fake, str(plain["DBInstanceArn"]), str(topic), str(queue_url))
    finally:
        fake.stop()
        cleanup = mock_aws()
        cleanup.start()
        cleanup.stop()


@dataclass
class Hook:
    """A webhook on 127.0.0.1: records every request, answers `status` after `delay` s."""

    status: int = 200
    delay: float = 0.0
    received: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def hook() -> Iterator[Hook]:
    state = Hook()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.received.append(("POST", self.path, dict(self.headers), body))
            time.sleep(state.delay)
            answer = b"ok" if state.status == 200 else b"invalid_payload\x1b[31m"
            try:
                self.send_response(state.status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:
                pass  # the client gave up (a timeout test)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/services/{TOKEN}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _secret_free(*blobs: bytes) -> None:
    for blob in blobs:
        for sentinel in (*SENTINELS, TOKEN, "tagvalue-7f3a", "<!channel>", "evil.example"):
            assert sentinel.encode() not in blob, sentinel
            assert sentinel.replace("/", "\\/").encode() not in blob, sentinel


def _report(out: Path) -> dict[str, Any]:
    return json.loads((out / "rdsaudit-report.json").read_text())  # type: ignore[no-any-return]


def test_webhook_gets_one_short_message_without_secrets_or_tags(
        estate: Estate, hook: Hook, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run(estate.fake, "scan", "--regions", REGION, "--no-history", "--output-dir", out,
               "--format", "json,html,csv", "--notify", hook.url)
    assert proc.returncode == 1, proc.stderr
    [(method, path, headers, body)] = hook.received
    assert (method, path) == ("POST", f"/services/{TOKEN}")
    assert headers["Content-Type"] == "application/json"
    _secret_free(body)
    msg = json.loads(body)
    text = msg["text"]
    assert msg["mrkdwn"] is False
    assert text.startswith("rdsaudit: Not compliant: ")
    assert "Fix first:\n1. [high] Re-encrypt unencrypted instance plain-db" in text
    assert text.endswith(f"Report: {out.resolve()}")
    doc = _report(out)
    fields = msg["rdsaudit"]
    assert fields["failures_by_severity"] == doc["summary"]["failures_by_severity"]
    assert fields["exit_code"] == 1 and fields["report"] == str(out.resolve())
    assert len(fields["actions"]) == min(3, len(doc["summary"]["actions"]))
    assert [a["urgency"] for a in fields["actions"]] == [1, 2, 3][:len(fields["actions"])]
    assert len(text) < 1500
    # The tag is in the report (it is the resource's), never in the message.
    assert "tagvalue-7f3a" in json.dumps(doc["resources"])
    # The webhook's token is a secret: in no output, the target named by its host.
    assert not leaks(proc, out, sentinels=(TOKEN, *SENTINELS))
    assert f"notify http://127.0.0.1:{hook.url.split(':')[2].split('/')[0]}/…: sent" \
        in proc.stderr.decode()


def test_a_name_that_is_not_an_aws_identifier_is_withheld(
        estate: Estate, hook: Hook, tmp_path: Path) -> None:
    estate.fake.overlay(estate.plain_arn, {"DBInstanceIdentifier": "<!channel>evil.example"})
    try:
        proc = run(estate.fake, "scan", "--regions", REGION, "--no-history", "--output-dir",
                   tmp_path, "--notify", hook.url)
    finally:
        estate.fake.clear_overlays()
    assert proc.returncode == 1, proc.stderr
    [(_, _, _, body)] = hook.received
    _secret_free(body)
    text = json.loads(body)["text"]
    assert "name is withheld: not a plain AWS identifier" in text, text


def test_notify_on_fail_sends_only_when_the_gate_is_not_clean(
        estate: Estate, hook: Hook, tmp_path: Path) -> None:
    # Only critical failures gate: the estate passes, nothing is sent.
    proc = run(estate.fake, "scan", "--regions", REGION, "--no-history", "--fail-on",
               "critical", "--output-dir", tmp_path / "a", "--notify", hook.url,
               "--notify-on", "fail")
    assert proc.returncode == 0, proc.stderr
    assert hook.received == []
    # Always (the default): the passing run is told too.
    proc = run(estate.fake, "scan", "--regions", REGION, "--no-history", "--fail-on",
               "critical", "--output-dir", tmp_path / "b", "--notify", hook.url)
    assert proc.returncode == 0, proc.stderr
    [(_, _, _, body)] = hook.received
    assert json.loads(body)["text"].startswith("rdsaudit: Compliant at --fail-on critical")
    # --exit-zero does not hide a failing gate from --notify-on fail.
    proc = run(estate.fake, "scan", "--regions", REGION, "--no-history", "--exit-zero",
               "--output-dir", tmp_path / "c", "--notify", hook.url, "--notify-on", "fail")
    assert proc.returncode == 0, proc.stderr
    assert len(hook.received) == 2
    assert json.loads(hook.received[1][3])["rdsaudit"]["exit_code"] == 1


def test_sns_topic_receives_text_for_people_and_json_for_machines(
        estate: Estate, tmp_path: Path) -> None:
    proc = run(estate.fake, "scan", "--regions", REGION, "--no-history", "--output-dir",
               tmp_path, "--notify", f"sns:{estate.topic_arn}")
    assert proc.returncode == 1, proc.stderr
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=estate.fake.endpoint_url,
                       aws_access_key_id="x", aws_secret_access_key="x")
    [envelope] = sqs.receive_message(QueueUrl=estate.queue_url, MaxNumberOfMessages=10,
                                     WaitTimeSeconds=0)["Messages"]
    sqs.delete_message(QueueUrl=estate.queue_url, ReceiptHandle=envelope["ReceiptHandle"])
    _secret_free(envelope["Body"].encode())
    sent = json.loads(envelope["Body"])
    assert sent["TopicArn"] == estate.topic_arn
    assert sent["Subject"].startswith("rdsaudit: Not compliant") and len(sent["Subject"]) < 100
    message = json.loads(sent["Message"])  # the SQS protocol's entry: the structured JSON
    assert message["rdsaudit"]["exit_code"] == 1
    assert message["text"].startswith("rdsaudit: Not compliant")
    publishes = [c for c in estate.fake.calls() if c.key == "sns:Publish"]
    assert len(publishes) == 1


def test_merge_notifies_with_the_merged_report(estate: Estate, hook: Hook,
                                               tmp_path: Path) -> None:
    inventory = tmp_path / "inv.json"
    assert run(estate.fake, "scan", "--regions", REGION, "--no-history", "--save-inventory",
               inventory).returncode == 1
    proc = run(estate.fake, "merge", inventory, "--output-dir", tmp_path / "merged",
               "--notify", hook.url, "--notify-on", "fail")
    assert proc.returncode == 1, proc.stderr
    [(_, _, _, body)] = hook.received
    assert json.loads(body)["rdsaudit"]["report"] == str((tmp_path / "merged").resolve())


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("failure", ["500", "timeout", "refused"])
def test_a_failed_webhook_is_an_error_exit_3_and_the_reports_stay(
        estate: Estate, hook: Hook, tmp_path: Path, failure: str) -> None:
    url = hook.url
    if failure == "500":
        hook.status = 500
    elif failure == "timeout":
        hook.delay = 3
    else:
        url = f"http://127.0.0.1:{_closed_port()}/services/{TOKEN}"
    out = tmp_path / "out"
    proc = run(estate.fake, "scan", "--regions", REGION, "--no-history", "--fail-on",
               "critical", "--format", "json,html", "--output-dir", out, "--notify", url,
               "--notify-timeout", "0.5")
    assert proc.returncode == 3, proc.stderr
    assert (out / "rdsaudit-report.html").stat().st_size > 0
    doc = _report(out)
    [error] = doc["errors"]
    assert (error["service"], error["operation"]) == ("notify", "POST")
    assert error["code"] == {"500": "HTTP500", "timeout": "Timeout",
                             "refused": "ConnectionRefused"}[failure], error
    assert doc["summary"]["complete"] is False and doc["summary"]["exit_code"] == 3
    assert "\x1b" not in error["message"]  # the endpoint's answer is shown printable only
    assert not leaks(proc, out, sentinels=(TOKEN, *SENTINELS))
    assert "notify" in proc.stderr.decode() and "failed" in proc.stderr.decode()


def test_a_failed_publish_is_an_error_exit_3(estate: Estate, tmp_path: Path) -> None:
    missing = estate.topic_arn + "-gone"
    proc = run(estate.fake, "scan", "--regions", REGION, "--no-history", "--fail-on",
               "critical", "--output-dir", tmp_path, "--notify", f"sns:{missing}")
    assert proc.returncode == 3, proc.stderr
    [error] = _report(tmp_path)["errors"]
    assert (error["service"], error["operation"], error["resource"]) == (
        "sns", "Publish", missing)


def test_the_notification_tells_of_an_earlier_failed_delivery(
        estate: Estate, hook: Hook, tmp_path: Path) -> None:
    estate.fake.inject_fault(Fault("securityhub", "*", code="AccessDeniedException",
                                   message="not authorized"))
    try:
        proc = run(estate.fake, "scan", "--regions", REGION, "--no-history", "--fail-on",
                   "critical", "--output-dir", tmp_path, "--security-hub", "--notify",
                   hook.url, "--notify-on", "fail")
    finally:
        estate.fake.clear_faults()
    assert proc.returncode == 3, proc.stderr
    [(_, _, _, body)] = hook.received
    fields = json.loads(body)["rdsaudit"]
    assert fields["exit_code"] == 3 and fields["complete"] is False


@pytest.mark.parametrize(("value", "says"), [
    ("http://hooks.example.com/x", "plain http:// only to 127.0.0.1 or localhost"),
    ("ftp://127.0.0.1/x", "takes an https:// URL or sns:TOPIC_ARN"),
    ("hooks.slack.com/services/x", "takes an https:// URL or sns:TOPIC_ARN"),
    ("https://user:pw@hooks.example.com/x", "no user or password in the URL"),
    ("https://hooks.example.com:port/x", "takes an https:// URL or sns:TOPIC_ARN"),
    ("sns:arn:aws:s3:::bucket", "not sns:arn:PARTITION:sns:REGION:ACCOUNT:TOPIC"),
    ("sns:arn:aws:sns:us-east-1:123456789012:bad topic", "not sns:arn:"),
    ("sns:rdsaudit-alerts", "not sns:arn:"),
    ("https://hooks.example.com/x\r\nX-Injected: 1", "percent-encode it"),
])
def test_bad_notify_values_are_one_line_exit_2(estate: Estate, value: str, says: str) -> None:
    line = one_line_error(run_text(estate.fake, "scan", "--no-history", "--notify", value))
    assert says in line
    assert "pw@" not in line


def test_notify_on_without_notify_is_exit_2(estate: Estate) -> None:
    assert "--notify-on needs --notify" in one_line_error(
        run_text(estate.fake, "merge", "x.json", "--notify-on", "fail"))
