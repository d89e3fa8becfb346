"""Read-only, proven: a full scan as an IAM user holding exactly `rdsaudit iam-policy`.

The console script scans the demo estate through the emulator while moto enforces IAM
(moto-fidelity §10.A: `POST /moto-api/reset-auth` with a text/plain count of requests left
unauthenticated; FakeAWS forwards `/moto-api/` to moto). Users, policies and access keys are
created while authentication is off; each test turns it on around its scans only.

What the emulator cannot enforce, and how the tests account for it:

* FakeAWS rewrites the body of the listings it paginates (it drops `MaxRecords`/`Marker`
  before asking moto for the whole listing), so moto's SigV4 check fails on them
  (SignatureDoesNotMatch) although the client signed correctly. The module turns moto's
  signature check off; the access key must still exist and every action is still
  authorised against the user's policies (`check_action_permitted`), which is what these
  tests are about.
* Later pages of a paginated listing are served from the layer's cache, and
  DescribeDBClusterAutomatedBackups is answered by the layer alone (moto does not implement
  it): those requests never reach moto's IAM check. sts:GetCallerIdentity is always allowed
  by moto, as by AWS. `UNENFORCEABLE` lists these; the static checks (every recorded call is
  in the policy) still cover them.
* moto answers a denied KMS call with an XML error body, so botocore reports code "403"
  with the XML as the message (moto-fidelity §10.A, §11.19): `denied()` recognises it.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import boto3
import pytest
from botocore.exceptions import ClientError

from rdsaudit.collect.failures import ACCESS_DENIED_CODES
from rdsaudit.collect.specs import LISTINGS, required_actions
from rdsaudit.demo.emulator import FakeAWS
from rdsaudit.demo.estate import DEMO_REGIONS, DemoEstate, demo_environment
from rdsaudit.report import FORMATS
from tests.cli.test_cli import run as run_offline
from tests.e2e.test_scan import run
from tests.support.reports import report_text

READ_PREFIXES = ("Describe", "List", "Get")
UNENFORCEABLE = {
    "sts:GetCallerIdentity": "moto (like AWS) always allows it",
    "rds:DescribeDBClusterAutomatedBackups": "answered by the FakeAWS layer, never by moto",
    "kms:GetKeyLastUsage": "answered by the FakeAWS layer (moto lacks it); an AccessDenied "
                           "only leaves a key's last use unknown, by design",
}
NOT_AUTHORISED = {"SignatureDoesNotMatch", "InvalidClientTokenId", "UnrecognizedClientException",
                  "IncompleteSignature", "MissingAuthenticationToken"}

Served = tuple[FakeAWS, DemoEstate]


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    from moto.iam.access_control import IAMRequestBase

    with pytest.MonkeyPatch.context() as mp:
        # See the module docstring: FakeAWS's pagination re-writes signed request bodies.
        mp.setattr(IAMRequestBase, "check_signature", lambda self: None)
        with demo_environment() as env:
            yield env


@pytest.fixture(scope="module")
def printed_policy() -> dict[str, Any]:
    proc = run_offline("iam-policy")
    assert proc.returncode == 0, proc.stderr
    policy: dict[str, Any] = json.loads(proc.stdout)
    return policy


def _reset_auth(fake: FakeAWS, count: str) -> dict[str, Any]:
    request = urllib.request.Request(f"{fake.endpoint_url}/moto-api/reset-auth",
                                     data=count.encode(), method="POST",
                                     headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=10) as response:  # 127.0.0.1 only
        answer: dict[str, Any] = json.loads(response.read())
    return answer


@contextlib.contextmanager
def iam_enforced(fake: FakeAWS) -> Iterator[None]:
    """moto checks every request against IAM from here (0 unauthenticated requests left)."""
    answer = _reset_auth(fake, "0")
    assert answer["status"] == "ok", answer
    try:
        yield
    finally:
        from moto import settings

        with contextlib.suppress(OSError):
            _reset_auth(fake, "inf")
        settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")


_users = iter(range(10**6))


class User(NamedTuple):
    name: str
    arn: str
    env: dict[str, str]  # its credentials, as `run(fake, ..., **env)` takes them


def admin_iam(fake: FakeAWS) -> Any:
    return boto3.client("iam", region_name="us-east-1", endpoint_url=fake.endpoint_url,
                        aws_access_key_id="admin", aws_secret_access_key="admin")


def iam_user(fake: FakeAWS, actions: list[str] | None,
             template: dict[str, Any] | None = None) -> User:
    """A new IAM user with one managed policy: `template` with its first statement's
    actions replaced by `actions` (None: no policy at all). Auth must be off."""
    iam = admin_iam(fake)
    name = f"rdsaudit-{next(_users)}"
    user_arn = iam.create_user(UserName=name)["User"]["Arn"]
    if actions is not None:
        document = json.loads(json.dumps(template))
        document["Statement"][0]["Action"] = actions
        arn = iam.create_policy(PolicyName=f"{name}-policy",
                                PolicyDocument=json.dumps(document))["Policy"]["Arn"]
        iam.attach_user_policy(UserName=name, PolicyArn=arn)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return User(name, user_arn, {"AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                                 "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
                                 "AWS_SESSION_TOKEN": ""})


def assert_enforced(fake: FakeAWS, nobody: User) -> None:
    """Authentication is really on: a user without any policy is refused."""
    rds = boto3.client("rds", region_name="us-east-1", endpoint_url=fake.endpoint_url,
                       aws_access_key_id=nobody.env["AWS_ACCESS_KEY_ID"],
                       aws_secret_access_key=nobody.env["AWS_SECRET_ACCESS_KEY"])
    with pytest.raises(ClientError) as refused:
        rds.describe_db_instances()
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


def denied(error: dict[str, Any]) -> bool:
    """An access-denied collection error, including moto's XML-bodied KMS 403."""
    code, message = str(error["code"]), str(error["message"])
    return (code in ACCESS_DENIED_CODES
            or (code == "403" and "<Code>AccessDenied</Code>" in message))


def error_set(doc: dict[str, Any]) -> set[tuple[str, str, str, str, str]]:
    return {(e["account_id"], e["region"], e["service"], e["operation"],
             "denied" if denied(e) else e["code"]) for e in doc["errors"]}


def findings_of(doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(f["rule_id"], f["resource"]["arn"], f["status"]) for f in doc["findings"]}


@pytest.fixture(scope="module")
def unrestricted(served: Served, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same full scan without IAM enforcement: what the restricted scans must match."""
    fake, _ = served
    out = tmp_path_factory.mktemp("unrestricted")
    proc = run(fake, "scan", "--no-history", "--quiet", "--output-dir", out)
    assert proc.returncode == 1, proc.stderr
    doc: dict[str, Any] = json.loads((out / "rdsaudit-report.json").read_text())
    # The demo's only error: the partner's key that an emulator fault (not IAM) denies.
    assert [(e["operation"], e["code"]) for e in doc["errors"]] == [
        ("DescribeKey", "AccessDeniedException")]
    return doc


# -- the policy as printed ------------------------------------------------------------------

def test_iam_policy_is_valid_json_with_only_read_actions_on_any_resource(
        printed_policy: dict[str, Any]) -> None:
    assert printed_policy["Version"] == "2012-10-17"
    [statement] = printed_policy["Statement"]
    assert statement["Effect"] == "Allow" and statement["Resource"] == "*"
    assert set(statement) == {"Sid", "Effect", "Action", "Resource"}  # no NotAction, Condition
    actions = statement["Action"]
    assert actions == sorted(set(actions)) == required_actions()
    for action in actions:
        service, _, operation = action.partition(":")
        assert service in {"rds", "kms", "ec2", "sts", "cloudtrail"}, action
        assert operation.startswith(READ_PREFIXES) and "*" not in operation, action
    # Derived from the collector table: every listing is in it.
    assert {spec.action for spec in LISTINGS} <= set(actions)
    assert set(UNENFORCEABLE) <= set(actions)


# -- the full scan, as the least-privileged user ---------------------------------------------

def test_full_scan_as_a_user_with_exactly_the_printed_policy(
        served: Served, printed_policy: dict[str, Any], unrestricted: dict[str, Any],
        tmp_path: Path) -> None:
    fake, _ = served
    policy_actions = set(printed_policy["Statement"][0]["Action"])
    auditor = iam_user(fake, sorted(policy_actions), printed_policy)
    nobody = iam_user(fake, None)
    out, history = tmp_path / "out", tmp_path / "history.db"
    with iam_enforced(fake):
        assert_enforced(fake, nobody)
        fake.reset_calls()
        # No --regions: the regions come from ec2:DescribeRegions, so every action is used.
        proc = run(fake, "scan", "--format", ",".join(FORMATS), "--output-dir", out,
                   "--save-inventory", tmp_path / "inv.json", "--history", history, **auditor.env)
        seen = fake.calls()
        assert_enforced(fake, nobody)  # still on after the scan
    assert proc.returncode == unrestricted["summary"]["exit_code"] == 1, proc.stderr
    doc = json.loads((out / "rdsaudit-report.json").read_text())

    # Nothing was refused: the errors are exactly the unrestricted scan's (the emulator's
    # partner-key fault), and the judgement is the same.
    assert error_set(doc) == error_set(unrestricted)
    assert not [e for e in doc["errors"] if e["code"] in NOT_AUTHORISED or
                (denied(e) and e["operation"] != "DescribeKey")], doc["errors"]
    assert findings_of(doc) == findings_of(unrestricted)
    assert doc["summary"]["resources_total"] == unrestricted["summary"]["resources_total"] > 0

    # Every operation the scan made is in the policy and reads; the emulator saw the same.
    calls = doc["scan"]["api_calls"]
    assert calls.keys() <= policy_actions, calls.keys() - policy_actions
    assert all(op.partition(":")[2].startswith(READ_PREFIXES) for op in calls)
    assert calls == dict(Counter(c.key for c in seen))
    assert not [c for c in seen if c.status == 403]
    # The scan used every action of the policy: none is there for nothing.
    assert set(calls) == policy_actions

    # The user's credentials reach no report, inventory, history or log.
    texts = [proc.stdout, proc.stderr, (tmp_path / "inv.json").read_text()]
    texts += [report_text(p) for p in out.iterdir()]
    listing = run(fake, "history", "--history", history, "--json")
    assert listing.returncode == 0, listing.stderr
    texts.append(listing.stdout)
    with contextlib.closing(sqlite3.connect(history)) as db:
        texts += [repr(row) for table in ("scans", "scan_accounts")
                  for row in db.execute(f"SELECT * FROM {table}")]
    texts.append(history.read_bytes().decode("latin-1"))
    for secret in (auditor.env["AWS_ACCESS_KEY_ID"], auditor.env["AWS_SECRET_ACCESS_KEY"]):
        assert not any(secret in text for text in texts)


# -- negative controls: without one action, the scan says so --------------------------------

ENFORCEABLE = [a for a in required_actions() if a not in UNENFORCEABLE]


@pytest.mark.parametrize("missing", ENFORCEABLE)
def test_without_one_action_the_scan_reports_access_denied_for_it(
        served: Served, printed_policy: dict[str, Any], unrestricted: dict[str, Any],
        missing: str, tmp_path: Path) -> None:
    fake, _ = served
    actions = [a for a in printed_policy["Statement"][0]["Action"] if a != missing]
    assert len(actions) == len(printed_policy["Statement"][0]["Action"]) - 1
    user = iam_user(fake, actions, printed_policy)
    # The demo's regions only (faster), unless the missing action is the region discovery.
    regions = [] if missing == "ec2:DescribeRegions" else ["--regions", ",".join(DEMO_REGIONS)]
    with iam_enforced(fake):
        proc = run(fake, "scan", *regions, "--no-history", "--output-dir", tmp_path,
                   **user.env)
    assert proc.returncode in (1, 3), proc.stderr
    assert "Traceback" not in proc.stderr
    doc = json.loads((tmp_path / "rdsaudit-report.json").read_text())
    assert doc["summary"]["complete"] is False
    new = error_set(doc) - error_set(unrestricted)
    service, _, operation = missing.partition(":")
    assert new, f"removing {missing} changed nothing: is IAM really enforced?"
    # Only the missing action is refused (its errors may be per region), and it is named
    # on stderr with the report's error line.
    assert {(s, o, c) for _, _, s, o, c in new} == {(service, operation, "denied")}, new
    assert f"{missing}:" in proc.stderr and "INCOMPLETE" in proc.stderr


# -- several accounts: the printed policy is the member role's; the caller only assumes it ---

MEMBER = "111122223333"
ROLE = "rdsaudit-read-only"


def _member_role(fake: FakeAWS, policy: dict[str, Any], caller_arn: str) -> str:
    """The audit role in the member account, trusting `caller_arn`, holding `policy`."""
    iam = admin_iam(fake)

    def in_member(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = MEMBER

    iam.meta.events.register("before-send", in_member)
    name = f"{ROLE}-{next(_users)}"
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": caller_arn}, "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    arn = iam.create_policy(PolicyName=f"{name}-policy",
                            PolicyDocument=json.dumps(policy))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    assert role["Role"]["Arn"] == f"arn:aws:iam::{MEMBER}:role/{name}"
    return name


@pytest.mark.parametrize("caller_may_assume", [True, False], ids=["assume", "no-assume"])
def test_member_role_with_the_printed_policy_and_a_caller_that_only_assumes_it(
        served: Served, printed_policy: dict[str, Any], caller_may_assume: bool,
        tmp_path: Path) -> None:
    """`iam-policy` is what the role in each scanned account needs; the caller itself needs
    only sts:AssumeRole on that role (and organizations:ListAccounts for --organization),
    which the printed policy does not contain."""
    fake, _ = served
    iam = admin_iam(fake)
    caller = iam_user(fake, None)
    role = _member_role(fake, printed_policy, caller.arn)
    if caller_may_assume:
        assume = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "sts:AssumeRole",
            "Resource": f"arn:aws:iam::{MEMBER}:role/{role}"}]}
        arn = iam.create_policy(PolicyName=f"{caller.name}-assume",
                                PolicyDocument=json.dumps(assume))["Policy"]["Arn"]
        iam.attach_user_policy(UserName=caller.name, PolicyArn=arn)
    with iam_enforced(fake):
        proc = run(fake, "scan", "--accounts", MEMBER, "--role-name", role, "--no-history",
                   "--output-dir", tmp_path, **caller.env)
    doc = json.loads((tmp_path / "rdsaudit-report.json").read_text())
    assert doc["scan"]["accounts"] == [MEMBER]
    if not caller_may_assume:
        assert proc.returncode == 3, proc.stderr
        assert [(e["account_id"], e["operation"], e["code"]) for e in doc["errors"]] == [
            (MEMBER, "AssumeRole", "AccessDenied")]
        return
    assert proc.returncode == 0, proc.stderr
    assert doc["errors"] == []
    calls = set(doc["scan"]["api_calls"])
    assert calls - set(printed_policy["Statement"][0]["Action"]) == {"sts:AssumeRole"}
    assert {"ec2:DescribeRegions", "rds:DescribeDBInstances", "kms:ListAliases"} <= calls
