"""`rdsaudit iam-policy` and the opt-in writes: each flag adds its statement and nothing else,
and a scan that writes its reports to S3 and notifies SNS works as a user holding exactly
the printed policy, and is refused those writes without the flags.

moto enforces IAM per action and, for S3 only, per resource (moto-fidelity §10.A; SNS
requests are authorised as if on Resource "*"): the resources of the statements are checked
as printed, the sufficiency of the actions through the scan.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from rdsaudit.demo.emulator import FakeAWS
from tests.cli.test_cli import one_line_error
from tests.cli.test_cli import run as run_offline
from tests.e2e.test_readonly_iam import denied, iam_enforced, iam_user
from tests.e2e.test_scan import run
from tests.support.hostile import PW

REGION = "us-east-1"
BUCKET = "audit-reports"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:rdsaudit-alerts"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _policy(*flags: str) -> dict[str, Any]:
    proc = run_offline("iam-policy", *flags)
    assert proc.returncode == 0, proc.stderr
    policy: dict[str, Any] = json.loads(proc.stdout)
    return policy


def _added(*flags: str) -> list[dict[str, Any]]:
    base, extended = _policy()["Statement"], _policy(*flags)["Statement"]
    assert extended[:len(base)] == base  # the read-only part never changes
    return extended[len(base):]


def test_without_flags_the_policy_has_no_write() -> None:
    actions = [a for s in _policy()["Statement"] for a in s["Action"]]
    assert not [a for a in actions if a.startswith(("s3:", "sns:", "securityhub:"))
                or a in ("kms:GenerateDataKey", "kms:Decrypt")]


def test_s3_output_adds_put_object_under_its_prefix_and_the_key_through_s3_only() -> None:
    [put] = _added("--output-dir", f"s3://{BUCKET}/daily")
    assert (put["Action"], put["Resource"]) == (["s3:PutObject"],
                                                [f"arn:*:s3:::{BUCKET}/daily/*"])
    put, key = _added("--output-dir", f"s3://{BUCKET}/daily/", "--s3-kms-key", KEY_ARN)
    assert put["Resource"] == [f"arn:*:s3:::{BUCKET}/daily/*"]
    assert (key["Action"], key["Resource"]) == (["kms:GenerateDataKey"], KEY_ARN)
    assert key["Condition"] == {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}}
    [_, by_alias] = _added("--output-dir", f"s3://{BUCKET}/", "--s3-kms-key", "alias/reports")
    assert by_alias["Resource"] == "arn:*:kms:*:*:key/*"
    assert by_alias["Condition"]["ForAnyValue:StringEquals"] == {
        "kms:ResourceAliases": "alias/reports"}


def test_s3_inputs_add_get_object_and_list_bucket() -> None:
    get, listing = _added("--s3-input", f"s3://{BUCKET}/daily/rdsaudit-report.json",
                          "--s3-input", f"s3://{BUCKET}/runs/")
    assert get["Action"] == ["s3:GetObject"]
    assert get["Resource"] == [f"arn:*:s3:::{BUCKET}/daily/rdsaudit-report.json",
                               f"arn:*:s3:::{BUCKET}/runs/*"]
    assert (listing["Action"], listing["Resource"]) == (["s3:ListBucket"],
                                                        [f"arn:*:s3:::{BUCKET}"])
    *_, key = _added("--s3-input", f"s3://{BUCKET}/runs/", "--s3-kms-key", KEY_ARN)
    assert key["Action"] == ["kms:Decrypt"]


def test_notify_sns_adds_publish_on_that_topic_alone() -> None:
    other = TOPIC_ARN + "-2"
    [publish] = _added("--notify", f"sns:{TOPIC_ARN}", "--notify", f"sns:{other}",
                       "--notify", "https://hooks.example.com/services/x")
    assert (publish["Action"], publish["Resource"]) == (["sns:Publish"], [TOPIC_ARN, other])
    assert _added("--notify", "https://hooks.example.com/services/x") == []


@pytest.mark.parametrize(("flags", "says"), [
    (("--output-dir", "reports/"), "not an s3://BUCKET/KEY location"),
    (("--s3-input", "s3://Bad_Bucket/x"), "not an s3://BUCKET/KEY location"),
    (("--s3-kms-key", KEY_ARN), "with --output-dir s3://… or --s3-input s3://…"),
    (("--output-dir", f"s3://{BUCKET}/", "--s3-kms-key", "1234"), "KMS key ARN or alias/"),
    (("--notify", "sns:arn:aws:s3:::bucket"), "not sns:arn:"),
])
def test_bad_iam_policy_flags_are_one_line_exit_2(flags: tuple[str, ...], says: str) -> None:
    assert says in one_line_error(run_offline("iam-policy", *flags))


# -- the printed policy, enforced by moto ----------------------------------------------------

@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAWS]:
    from moto import mock_aws
    from moto.iam.access_control import IAMRequestBase

    mock = mock_aws()
    mock.start()
    try:
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        boto3.client("sns", region_name=REGION).create_topic(Name="rdsaudit-alerts")
        boto3.client("rds", region_name=REGION).create_db_instance(
            DBInstanceIdentifier="ledger", Engine="postgres", DBInstanceClass="db.t3.micro",
            **PW)
    finally:
        mock.stop(remove_data=False)
    with pytest.MonkeyPatch.context() as mp:
        # FakeAWS re-writes the signed bodies of the listings it pages (test_readonly_iam).
        mp.setattr(IAMRequestBase, "check_signature", lambda self: None)
        served = FakeAWS()
        served.start()
        try:
            yield served
        finally:
            served.stop()
            cleanup = mock_aws()
            cleanup.start()
            cleanup.stop()


def _scan_as(fake: FakeAWS, policy: dict[str, Any], tmp: Path) -> tuple[int, dict[str, Any]]:
    actions = policy["Statement"][0]["Action"]
    for statement in policy["Statement"]:
        # moto authorises an SNS request as a request on Resource "*" (it has no resource
        # for SNS), so a statement on the topic's ARN never matches there; S3 requests do
        # carry theirs. The topic ARN is checked as printed above.
        if statement["Action"] == ["sns:Publish"]:
            statement["Resource"] = "*"
    user = iam_user(fake, actions, policy)
    prefix = f"run-{tmp.name}/"
    with iam_enforced(fake):
        proc = run(fake, "scan", "--regions", REGION, "--no-history", "--output-dir",
                   f"s3://{BUCKET}/{prefix}", "--notify", f"sns:{TOPIC_ARN}", **user.env)
    assert "Traceback" not in proc.stderr
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=fake.endpoint_url,
                      aws_access_key_id="x", aws_secret_access_key="x")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    if listed:
        doc = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{prefix}rdsaudit-report.json")
                         ["Body"].read())
    else:  # not uploaded: the staged copy says why
        [where] = [line.rsplit(" ", 1)[-1] for line in proc.stderr.splitlines()
                   if "the reports are in" in line]
        doc = json.loads((Path(where) / "rdsaudit-report.json").read_text())
    return proc.returncode, doc


def test_the_printed_writes_are_enough_and_needed(fake: FakeAWS, tmp_path: Path) -> None:
    flags = ("--output-dir", f"s3://{BUCKET}/", "--notify", f"sns:{TOPIC_ARN}")
    code, doc = _scan_as(fake, _policy(*flags), tmp_path / "with")
    refused = [e for e in doc["errors"] if denied(e)]
    assert refused == [] and code == 1, doc["errors"]

    code, doc = _scan_as(fake, _policy(), tmp_path / "without")
    assert code == 1
    assert {(e["service"], e["operation"]) for e in doc["errors"] if denied(e)} == {
        ("sns", "Publish"), ("s3", "PutObject")}, doc["errors"]
