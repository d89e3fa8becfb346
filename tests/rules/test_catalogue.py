"""Every rule: a table of pass, fail and edge cases on hand-built inventories (no AWS)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from rdsaudit.evaluate import evaluate
from rdsaudit.model import (
    CollectionError,
    EncryptionType,
    Inventory,
    KeyLookup,
    KeyProtection,
    KmsAlias,
    KmsKey,
    Resource,
    RotationLookup,
    Severity,
    SnapshotShare,
)
from rdsaudit.policy import KeyProtectionRule, Policy
from rdsaudit.rules import RULES
from tests.support.builders import (
    ACCOUNT,
    KEY,
    KEY2,
    OTHER_ACCOUNT,
    REGION,
    backup,
    cluster,
    cluster_snapshot,
    instance,
    inventory,
    key_arn,
    kms_key,
    snapshot,
    trail,
)


@dataclass(frozen=True)
class Case:
    name: str
    inventory: Inventory
    subject: str  # ARN of the resource or key judged
    expect: str | None  # "pass", "fail", or None: the rule must stay silent
    severity: Severity | None = None
    says: str | None = None  # a fragment the message must contain
    policy: Policy = field(default_factory=Policy)


def _arn(r: Resource) -> str:
    return r.arn


EU_KEY = key_arn("33333333-2222-3333-4444-555555555555", region="eu-west-1")
XACCT_KEY = key_arn("44444444-2222-3333-4444-555555555555", account=OTHER_ACCOUNT)
AWS_RDS_KEY_ID = "55555555-2222-3333-4444-555555555555"
AWS_KEY = key_arn(AWS_RDS_KEY_ID)

plain = instance("plain", encrypted=False)
enc = instance("enc")
member = instance("member", encrypted=False, cluster_id="cl1")
express = instance("express", encrypted=False, engine="sqlserver-ex")
old_class = instance("oldclass", encrypted=False, instance_class="db.m1.small")
malformed = instance("weird", encrypted=None)
src = instance("src")
same_replica = instance("rep", replica_source="src")
other_key_replica = instance("rep2", key=KEY2, replica_source="src")
plain_replica = instance("rep3", encrypted=False, replica_source="src")
xr_replica = instance("xrep", key=EU_KEY, region="eu-west-1", replica_source=src.arn)
sse_rds = cluster("owned", key=None, encryption_type=EncryptionType.SSE_RDS)
no_key = instance("nokey", key=None, encryption_type=None)
EU_PRIMARY = key_arn("mrk-1234abcd12ab34cd56ef1234567890ab")
EU_REPLICA = key_arn("mrk-1234abcd12ab34cd56ef1234567890ab", region="eu-west-1")
mr_user = instance("mruser", key=EU_REPLICA, region="eu-west-1")
mr_primary = kms_key(EU_PRIMARY, multi_region=True, primary_key_arn=EU_PRIMARY,
                     replica_key_arns=(EU_REPLICA,), rotation_enabled=False)
mr_replica = kms_key(EU_REPLICA, multi_region=True, primary_key_arn=EU_PRIMARY,
                     replica_key_arns=(), rotation=RotationLookup.NOT_CHECKED,
                     rotation_enabled=None)
pi_user = instance("piuser", performance_insights_kms_key_id=KEY2)
pi_plain = instance("piplain", encrypted=False, performance_insights_kms_key_id=KEY2)
secret_user = instance("secret", master_user_secret_kms_key_id=KEY2)
stream_user = cluster("stream", activity_stream_kms_key_id=KEY2)


XSTORE = Policy(minimum_key_protection=KeyProtection.CUSTOMER_EXTERNAL_STORE)


def _imported(valid_to: str | None, model: str = "KEY_MATERIAL_EXPIRES",
              arn: str = KEY) -> KmsKey:
    return kms_key(arn, origin="EXTERNAL", valid_to=valid_to, expiration_model=model,
                   rotation=RotationLookup.NOT_APPLICABLE, rotation_enabled=None)

CASES: dict[str, list[Case]] = {
    "instance-unencrypted": [
        Case("encrypted", inventory(enc), enc.arn, "pass"),
        Case("unencrypted", inventory(plain), plain.arn, "fail", Severity.HIGH),
        Case("cluster member judged at cluster", inventory(member), member.arn, None),
        Case("sqlserver-ex says edition", inventory(express), express.arn, "fail",
             says="change the edition"),
        Case("class without encryption", inventory(old_class), old_class.arn, "fail",
             says="db.m1.small"),
        Case("malformed: unknown is never pass", inventory(malformed), malformed.arn, None),
        Case("sse-rds counts as encrypted", inventory(instance(
            "o", key=None, encryption_type=EncryptionType.SSE_RDS)),
            instance("o").arn, "pass", says="AWS owned"),
    ],
    "cluster-unencrypted": [
        Case("encrypted", inventory(cluster()), cluster().arn, "pass"),
        Case("unencrypted", inventory(cluster(encrypted=False)), cluster().arn, "fail"),
        Case("sse-rds", inventory(sse_rds), sse_rds.arn, "pass"),
    ],
    "snapshot-unencrypted": [
        Case("encrypted", inventory(snapshot()), snapshot().arn, "pass"),
        Case("manual unencrypted", inventory(snapshot(encrypted=False)), snapshot().arn, "fail"),
        Case("automated unencrypted", inventory(snapshot("rds:db1-x", encrypted=False,
                                                         snapshot_type="automated")),
             snapshot("rds:db1-x").arn, "fail", says="automated"),
        Case("awsbackup unencrypted", inventory(snapshot("awsbackup:job-1", encrypted=False,
                                                         snapshot_type="awsbackup")),
             snapshot("awsbackup:job-1").arn, "fail"),
    ],
    "cluster-snapshot-unencrypted": [
        Case("encrypted", inventory(cluster_snapshot()), cluster_snapshot().arn, "pass"),
        Case("unencrypted", inventory(cluster_snapshot(encrypted=False)),
             cluster_snapshot().arn, "fail"),
    ],
    "automated-backup-unencrypted": [
        Case("encrypted", inventory(backup()), backup().arn, "pass"),
        Case("retained unencrypted", inventory(backup(encrypted=False)), backup().arn, "fail",
             Severity.MEDIUM, says="retained"),
    ],
    "snapshot-public": [
        Case("public", inventory(snapshot(encrypted=False), shares=(
            SnapshotShare(snapshot().arn, ("all",)),)), snapshot().arn, "fail",
            Severity.CRITICAL),
        Case("shared with one account", inventory(snapshot(encrypted=False), shares=(
            SnapshotShare(snapshot().arn, (OTHER_ACCOUNT,)),)), snapshot().arn, "pass",
            says=OTHER_ACCOUNT),
        Case("attribute call failed: silent", inventory(snapshot(encrypted=False)),
             snapshot().arn, None),
        Case("encrypted cannot be public", inventory(snapshot()), snapshot().arn, "pass"),
        Case("automated not judged", inventory(snapshot("rds:a", encrypted=False,
                                                        snapshot_type="automated")),
             snapshot("rds:a").arn, None),
        Case("public cluster snapshot", inventory(cluster_snapshot(encrypted=False), shares=(
            SnapshotShare(cluster_snapshot().arn, ("all",)),)), cluster_snapshot().arn, "fail"),
        Case("sse-rds cluster snapshot shared with all", inventory(
            cluster_snapshot(key=None, encryption_type=EncryptionType.SSE_RDS), shares=(
                SnapshotShare(cluster_snapshot().arn, ("all",)),)), cluster_snapshot().arn,
            "fail", Severity.CRITICAL, says="AWS owned"),
        Case("sse-rds cluster snapshot without attribute evidence: silent", inventory(
            cluster_snapshot(key=None, encryption_type=EncryptionType.SSE_RDS)),
            cluster_snapshot().arn, None),
        Case("sse-rds cluster snapshot not shared", inventory(
            cluster_snapshot(key=None, encryption_type=EncryptionType.SSE_RDS), shares=(
                SnapshotShare(cluster_snapshot().arn, ()),)), cluster_snapshot().arn, "pass"),
    ],
    "key-unusable": [
        Case("enabled", inventory(enc), enc.arn, "pass"),
        Case("disabled", inventory(enc, keys=(kms_key(key_state="Disabled"),)), enc.arn,
             "fail", Severity.CRITICAL, says="Disabled"),
        Case("pending deletion with days left", inventory(enc, keys=(kms_key(
            key_state="PendingDeletion", deletion_date="2026-12-02T12:00:00Z"),)),
            enc.arn, "fail", says="5 day(s) left"),
        Case("not found", inventory(enc, keys=(kms_key(lookup=KeyLookup.NOT_FOUND,
                                                       key_state=None),)),
             enc.arn, "fail", says="does not exist"),
        Case("access denied is not unusable", inventory(enc, keys=(kms_key(
            lookup=KeyLookup.ACCESS_DENIED, key_state=None),)), enc.arn, None),
        Case("unavailable custom store", inventory(enc, keys=(kms_key(
            key_state="Unavailable"),)), enc.arn, "fail"),
        Case("member judged at cluster", inventory(instance("m", cluster_id="cl1"), keys=(
            kms_key(key_state="Disabled"),)), instance("m").arn, None),
        Case("aws owned key not applicable", inventory(sse_rds), sse_rds.arn, None),
        Case("snapshot on disabled key", inventory(snapshot(), keys=(kms_key(
            key_state="Disabled"),)), snapshot().arn, "fail"),
        Case("pending replica deletion: no date, countdown explained", inventory(enc, keys=(
            kms_key(key_state="PendingReplicaDeletion", pending_deletion_window_days=7,
                    replica_key_arns=(EU_REPLICA,)),)), enc.arn, "fail", Severity.CRITICAL,
            says="7-day PendingDeletionWindowInDays countdown starts when its last replica"),
        Case("unknown key state: not unusable, not healthy", inventory(enc, keys=(kms_key(
            key_state="Hibernating"),)), enc.arn, None),
        Case("disabled Performance Insights key: high, names PI", inventory(
            pi_user, keys=(kms_key(KEY), kms_key(KEY2, key_state="Disabled"))),
            pi_user.arn, "fail", Severity.HIGH, says="Performance Insights cannot"),
        Case("PI key on an unencrypted instance still judged", inventory(
            pi_plain, keys=(kms_key(KEY2, key_state="PendingDeletion"),)),
            pi_plain.arn, "fail", Severity.HIGH, says="Performance Insights"),
        Case("disabled master user secret key", inventory(secret_user, keys=(
            kms_key(KEY), kms_key(KEY2, key_state="Disabled"))), secret_user.arn, "fail",
            Severity.HIGH, says="master user secret"),
        Case("disabled activity stream key", inventory(stream_user, keys=(
            kms_key(KEY), kms_key(KEY2, key_state="Disabled"))), stream_user.arn, "fail",
            Severity.HIGH, says="activity stream"),
        Case("storage and PI both broken: critical", inventory(pi_user, keys=(
            kms_key(KEY, key_state="Disabled"), kms_key(KEY2, key_state="Disabled"))),
            pi_user.arn, "fail", Severity.CRITICAL),
        Case("all roles healthy", inventory(pi_user), pi_user.arn, "pass",
             says="Performance Insights key"),
    ],
    "encryption-credentials-inaccessible": [
        Case("available", inventory(enc), enc.arn, "pass"),
        Case("recoverable", inventory(instance(
            "r", status="inaccessible-encryption-credentials-recoverable")),
            instance("r").arn, "fail", Severity.CRITICAL, says="seven days"),
        Case("terminal cluster", inventory(cluster(
            status="inaccessible-encryption-credentials")), cluster().arn, "fail",
            says="backup"),
        Case("member instance judged at its cluster", inventory(cluster(), instance(
            "m", cluster_id="cl1", status="inaccessible-encryption-credentials")),
            instance("m").arn, None),
        Case("cluster fails for its inaccessible member", inventory(cluster(), instance(
            "m", cluster_id="cl1", status="inaccessible-encryption-credentials")),
            cluster().arn, "fail", Severity.CRITICAL, says="m (inaccessible"),
        Case("no status: silent", inventory(instance("s", status=None)), instance("s").arn,
             None),
    ],
    "key-unverifiable": [
        Case("described", inventory(enc), enc.arn, "pass"),
        Case("access denied", inventory(enc, keys=(kms_key(lookup=KeyLookup.ACCESS_DENIED,
                                                           key_state=None,
                                                           note="AccessDeniedException: no"),)),
             enc.arn, "fail", Severity.MEDIUM, says="AccessDeniedException"),
        Case("throttled", inventory(enc, keys=(kms_key(lookup=KeyLookup.ERROR, key_state=None,
                                                       note="ThrottlingException: slow"),)),
             enc.arn, "fail"),
        Case("garbage key id", inventory(instance("g", key="default_kms_key_id")),
             instance("g").arn, "fail", says="not a key ARN"),
        Case("no key id at all", inventory(no_key), no_key.arn, "fail",
             says="no KmsKeyId"),
        Case("alias resolved through ListAliases", inventory(
            instance("al", key="alias/app"), aliases=(
                KmsAlias("alias/app", "us-east-1", ACCOUNT, KEY.rsplit("/", 1)[1]),)),
            instance("al").arn, "pass"),
        Case("alias in region whose ListAliases failed", inventory(
            instance("al2", key="alias/app"), errors=(CollectionError(
                ACCOUNT, "us-east-1", "kms", "ListAliases", "AccessDeniedException", "no"),)),
            instance("al2").arn, "fail", says="could not be resolved"),
        Case("unencrypted not applicable", inventory(plain), plain.arn, None),
        Case("unknown KeyState named", inventory(enc, keys=(kms_key(key_state="Hibernating"),)),
             enc.arn, "fail", Severity.MEDIUM, says="'Hibernating'"),
        Case("unknown KeyManager named", inventory(enc, keys=(kms_key(key_manager="PARTNER"),)),
             enc.arn, "fail", says="'PARTNER'"),
        Case("PI key denied: names the role", inventory(pi_user, keys=(
            kms_key(KEY), kms_key(KEY2, lookup=KeyLookup.ACCESS_DENIED, key_state=None,
                                  note="AccessDeniedException: no"))),
            pi_user.arn, "fail", Severity.MEDIUM, says="Performance Insights key"),
    ],
    "key-material-expiring": [
        Case("far expiry passes", inventory(enc, keys=(_imported("2027-06-01T00:00:00Z"),)),
             enc.arn, "pass", says="valid until"),
        Case("does not expire passes", inventory(enc, keys=(_imported(
            None, "KEY_MATERIAL_DOES_NOT_EXPIRE"),)), enc.arn, "pass", says="does not expire"),
        Case("within 30 days: high", inventory(enc, keys=(_imported("2026-12-15T12:00:00Z"),)),
             enc.arn, "fail", Severity.HIGH, says="18 day(s) left"),
        Case("within 7 days: critical", inventory(enc, keys=(
            _imported("2026-11-29T12:00:00Z"),)), enc.arn, "fail", Severity.CRITICAL,
            says="2 day(s) left"),
        Case("policy window 60 days", inventory(enc, keys=(_imported("2027-01-15T00:00:00Z"),)),
             enc.arn, "fail", Severity.HIGH, policy=Policy(key_material_expiry_days=60)),
        Case("PI key with expiring material", inventory(pi_user, keys=(kms_key(KEY), _imported(
            "2026-12-01T00:00:00Z", arn=KEY2))), pi_user.arn, "fail", Severity.CRITICAL,
            says="Performance Insights cannot"),
        Case("AWS_KMS origin: silent", inventory(enc), enc.arn, None),
        Case("expiring but no ValidTo: silent", inventory(enc, keys=(_imported(None),)),
             enc.arn, None),
    ],
    "encrypted-without-backups": [
        Case("retention 7", inventory(enc), enc.arn, "pass"),
        Case("retention 0", inventory(instance("nb", backup_retention=0)),
             instance("nb").arn, "fail", Severity.HIGH),
        Case("policy minimum 7", inventory(instance("b3", backup_retention=3)),
             instance("b3").arn, "fail", policy=Policy(min_backup_retention_days=7)),
        Case("replica exempt", inventory(src, instance("r0", replica_source="src",
                                                       backup_retention=0)),
             instance("r0").arn, None),
        Case("unencrypted not applicable", inventory(instance(
            "u0", encrypted=False, backup_retention=0)), instance("u0").arn, None),
    ],
    "replica-encryption-mismatch": [
        Case("both encrypted", inventory(src, same_replica), same_replica.arn, "pass"),
        Case("unencrypted replica of encrypted source", inventory(src, plain_replica),
             plain_replica.arn, "fail", Severity.HIGH),
        Case("source not in inventory", inventory(same_replica), same_replica.arn, None),
        Case("cross-region source by ARN", inventory(src, xr_replica), xr_replica.arn, "pass"),
    ],
    "replica-key-mismatch": [
        Case("same key", inventory(src, same_replica), same_replica.arn, "pass"),
        Case("other key same region", inventory(src, other_key_replica),
             other_key_replica.arn, "fail", Severity.HIGH),
        Case("cross-region never mismatched", inventory(src, xr_replica, keys=(
            kms_key(KEY), kms_key(EU_KEY))), xr_replica.arn, None),
    ],
    "key-region-mismatch": [
        Case("same region", inventory(enc), enc.arn, "pass"),
        Case("eu key on us resource", inventory(instance("eu", key=EU_KEY), keys=(
            kms_key(EU_KEY),)), instance("eu").arn, "fail", Severity.MEDIUM, says="eu-west-1"),
    ],
    "aws-managed-key": [
        Case("customer managed", inventory(enc), enc.arn, "pass"),
        Case("aws managed", inventory(instance("am", key=AWS_KEY), keys=(
            kms_key(AWS_KEY, key_manager="AWS"),)), instance("am").arn, "fail", Severity.LOW),
        Case("raised by policy", inventory(instance("am", key=AWS_KEY), keys=(
            kms_key(AWS_KEY, key_manager="AWS"),)), instance("am").arn, "fail", Severity.HIGH,
            policy=Policy(require_customer_managed_key=True)),
        Case("ladder: customer required", inventory(instance("am", key=AWS_KEY), keys=(
            kms_key(AWS_KEY, key_manager="AWS"),)), instance("am").arn, "fail", Severity.HIGH,
            says="below the required key protection customer",
            policy=Policy(minimum_key_protection=KeyProtection.CUSTOMER)),
        Case("ladder: aws-managed is the minimum, still low", inventory(instance(
            "am", key=AWS_KEY), keys=(kms_key(AWS_KEY, key_manager="AWS"),)),
            instance("am").arn, "fail", Severity.LOW,
            policy=Policy(minimum_key_protection=KeyProtection.AWS_MANAGED)),
        Case("ladder: account override, strictest wins", inventory(instance(
            "am", key=AWS_KEY), keys=(kms_key(AWS_KEY, key_manager="AWS"),)),
            instance("am").arn, "fail", Severity.HIGH, policy=Policy(key_protection=(
                KeyProtectionRule(ACCOUNT, KeyProtection.AWS_OWNED),
                KeyProtectionRule(ACCOUNT, KeyProtection.CUSTOMER)))),
        Case("ladder: another account's override does not apply", inventory(instance(
            "am", key=AWS_KEY), keys=(kms_key(AWS_KEY, key_manager="AWS"),)),
            instance("am").arn, "fail", Severity.LOW, policy=Policy(key_protection=(
                KeyProtectionRule(OTHER_ACCOUNT, KeyProtection.CUSTOMER),))),
        Case("known from alias when DescribeKey denied", inventory(
            instance("am2", key=AWS_KEY), keys=(kms_key(AWS_KEY, lookup=KeyLookup.ACCESS_DENIED,
                                                         key_manager=None, key_state=None),),
            aliases=(KmsAlias("alias/aws/rds", "us-east-1", ACCOUNT, AWS_RDS_KEY_ID),)),
            instance("am2").arn, "fail", says="aws/rds"),
        Case("unknown manager: silent", inventory(instance("am3", key=AWS_KEY), keys=(
            kms_key(AWS_KEY, lookup=KeyLookup.ERROR, key_manager=None, key_state=None),)),
            instance("am3").arn, None),
    ],
    "aws-owned-key": [
        Case("sse-kms", inventory(enc), enc.arn, "pass"),
        Case("sse-rds cluster", inventory(sse_rds), sse_rds.arn, "fail", Severity.LOW),
        Case("sse-rds raised", inventory(sse_rds), sse_rds.arn, "fail", Severity.HIGH,
             policy=Policy(require_customer_managed_key=True)),
        Case("ladder: aws-managed minimum raises aws-owned", inventory(sse_rds), sse_rds.arn,
             "fail", Severity.HIGH,
             policy=Policy(minimum_key_protection=KeyProtection.AWS_MANAGED)),
        Case("unencrypted not applicable", inventory(plain), plain.arn, None),
    ],
    "key-below-external-store": [
        Case("external store required, plain customer key", inventory(enc), enc.arn, "fail",
             Severity.HIGH, says="custom key store", policy=XSTORE),
        Case("imported material counts as customer", inventory(enc, keys=(kms_key(
            origin="EXTERNAL"),)), enc.arn, "fail", policy=XSTORE),
        Case("CloudHSM key passes", inventory(enc, keys=(kms_key(origin="AWS_CLOUDHSM"),)),
             enc.arn, "pass", policy=XSTORE),
        Case("external key store passes", inventory(enc, keys=(kms_key(
            origin="EXTERNAL_KEY_STORE"),)), enc.arn, "pass", policy=XSTORE),
        Case("not required: silent", inventory(enc), enc.arn, None),
        Case("aws managed key: its own rule", inventory(instance("am", key=AWS_KEY), keys=(
            kms_key(AWS_KEY, key_manager="AWS"),)), instance("am").arn, None, policy=XSTORE),
        Case("key not described: silent", inventory(enc, keys=(kms_key(
            lookup=KeyLookup.ACCESS_DENIED, key_state=None, key_manager=None),)), enc.arn,
             None, policy=XSTORE),
        Case("required for this account only", inventory(enc), enc.arn, "fail",
             policy=Policy(key_protection=(KeyProtectionRule(
                 ACCOUNT, KeyProtection.CUSTOMER_EXTERNAL_STORE),))),
    ],
    "key-rotation-disabled": [
        Case("rotating", inventory(enc), KEY, "pass"),
        Case("not rotating", inventory(enc, keys=(kms_key(rotation_enabled=False),)), KEY,
             "fail", Severity.MEDIUM, says="1 RDS resource"),
        Case("imported material: not applicable", inventory(enc, keys=(kms_key(
            rotation=RotationLookup.NOT_APPLICABLE, rotation_enabled=None),)), KEY, None),
        Case("aws managed not judged", inventory(instance("am", key=AWS_KEY), keys=(
            kms_key(AWS_KEY, key_manager="AWS", rotation=RotationLookup.NOT_CHECKED,
                    rotation_enabled=None),)), AWS_KEY, None),
        Case("unused key not judged", inventory(plain, keys=(kms_key(rotation_enabled=False),)),
             KEY, None),
        Case("rotation unknown", inventory(enc, keys=(kms_key(
            rotation=RotationLookup.ACCESS_DENIED, rotation_enabled=None),)), KEY, None),
        Case("imported material by origin even if rotation read false", inventory(enc, keys=(
            kms_key(origin="EXTERNAL", rotation_enabled=False),)), KEY, None),
        Case("CloudHSM key store by origin", inventory(enc, keys=(kms_key(
            origin="AWS_CLOUDHSM", rotation_enabled=False),)), KEY, None),
        Case("external key store by origin", inventory(enc, keys=(kms_key(
            origin="EXTERNAL_KEY_STORE", rotation_enabled=False),)), KEY, None),
        Case("multi-Region: judged on the primary, listing replicas and users", inventory(
            mr_user, keys=(mr_primary, mr_replica)), EU_PRIMARY, "fail", Severity.MEDIUM,
            says="replica(s) " + EU_REPLICA),
        Case("multi-Region replica itself: silent", inventory(
            mr_user, keys=(mr_primary, mr_replica)), EU_REPLICA, None),
        Case("pending replica deletion: no signal", inventory(enc, keys=(kms_key(
            key_state="PendingReplicaDeletion", rotation_enabled=False),)), KEY, None),
    ],
    "key-usage-not-audited": [
        Case("trail in the key's region", inventory(enc, trails=(trail(),)), KEY, "pass",
             says="audit"),
        Case("multi-region trail homed elsewhere", inventory(enc, trails=(trail(
            "org", home="eu-west-1", multi_region=True, organization=True),)), KEY, "pass"),
        Case("no trail at all", inventory(enc, trails=()), KEY, "fail", Severity.MEDIUM,
             says="no trail covers the region"),
        Case("trail not logging", inventory(enc, trails=(trail(logging=False),)), KEY, "fail",
             says="not logging"),
        Case("WriteOnly selectors", inventory(enc, trails=(trail(
            logs_kms=False, note="only WriteOnly management events are logged"),)), KEY,
             "fail", says="WriteOnly"),
        Case("kms excluded", inventory(enc, trails=(trail(
            logs_kms=False, note="kms.amazonaws.com is excluded"),)), KEY, "fail"),
        Case("single-region trail of another region", inventory(enc, trails=(trail(
            "eu", home="eu-west-1"),)), KEY, "fail"),
        Case("status unknown: silent", inventory(enc, trails=(trail(logging=None),)), KEY,
             None),
        Case("trails not listed (old inventory): silent", inventory(enc), KEY, None),
        Case("DescribeTrails failed there: silent", inventory(enc, trails=(), errors=(
            CollectionError(ACCOUNT, REGION, "cloudtrail", "DescribeTrails", "AccessDenied",
                            "no"),)), KEY, None),
        Case("AWS managed key not judged", inventory(instance("am", key=AWS_KEY), keys=(
            kms_key(AWS_KEY, key_manager="AWS"),), trails=()), AWS_KEY, None),
    ],
    "cross-account-key": [
        Case("own account", inventory(enc), enc.arn, "pass"),
        Case("other account", inventory(instance("x", key=XACCT_KEY), keys=(
            kms_key(XACCT_KEY, lookup=KeyLookup.ACCESS_DENIED, key_state=None),)),
            instance("x").arn, "fail", Severity.LOW, says=OTHER_ACCOUNT),
    ],
}

ALL_CASES = [(rule_id, case) for rule_id, cases in CASES.items() for case in cases]


def test_every_rule_has_a_table_with_pass_and_fail() -> None:
    assert set(CASES) == set(RULES)
    for rule_id, cases in CASES.items():
        outcomes = {c.expect for c in cases}
        assert {"pass", "fail"} <= outcomes, rule_id


@pytest.mark.parametrize(("rule_id", "case"), ALL_CASES,
                         ids=[f"{r}:{c.name}" for r, c in ALL_CASES])
def test_rule_case(rule_id: str, case: Case) -> None:
    result = evaluate(case.inventory, case.policy)
    found = [f for f in result.findings if f.rule_id == rule_id
             and f.resource.arn == case.subject]
    if case.expect is None:
        assert found == []
        return
    assert len(found) == 1, found
    finding = found[0]
    assert finding.status.value == case.expect, finding.message
    if case.severity is not None:
        assert finding.severity is case.severity
    if case.says is not None:
        assert case.says in finding.message
    if case.expect == "fail":
        assert finding.remediation is not None and finding.remediation.summary
    else:
        assert finding.remediation is None


def test_aurora_member_judged_only_through_its_cluster() -> None:
    inv = inventory(cluster(encrypted=False), member)
    result = evaluate(inv, Policy())
    assert {f.resource.id for f in result.findings if f.rule_id == "cluster-unencrypted"} == {
        "cl1"}
    assert not [f for f in result.findings if f.resource.id == "member"
                and f.rule_id != "encryption-credentials-inaccessible"]


def test_pass_evidence_for_a_healthy_estate() -> None:
    inv = inventory(enc, cluster(), snapshot(), cluster_snapshot(), backup())
    result = evaluate(inv, Policy())
    assert result.findings and all(f.status.value == "pass" for f in result.findings)
    assert {f.rule_id for f in result.findings} >= {
        "instance-unencrypted", "cluster-unencrypted", "snapshot-unencrypted",
        "cluster-snapshot-unencrypted", "automated-backup-unencrypted", "key-unusable",
        "key-unverifiable", "key-rotation-disabled", "cross-account-key"}


def test_failures_sort_first_by_severity() -> None:
    inv = inventory(plain, instance("r", status="inaccessible-encryption-credentials"))
    findings = evaluate(inv, Policy()).findings
    fails = [f for f in findings if f.status.value == "fail"]
    assert findings[: len(fails)] == tuple(fails)
    assert fails[0].severity is Severity.CRITICAL


def test_key_users_link_keys_to_dependent_resources() -> None:
    inv = inventory(enc, src, snapshot(), instance("m", cluster_id="cl1"))
    users = dict(evaluate(inv, Policy()).key_users)
    assert set(users[KEY]) == {enc.arn, src.arn, snapshot().arn}


def test_deletion_days_are_counted_from_the_scan_time() -> None:
    key = kms_key(key_state="PendingDeletion", deletion_date="2026-11-28T00:00:00Z")
    inv = replace(inventory(enc, keys=(key,)))
    [f] = [f for f in evaluate(inv, Policy()).findings if f.rule_id == "key-unusable"]
    assert "1 day(s) left" in f.message and "2026-11-28" in f.message


def test_multi_region_primary_lists_the_replicas_users() -> None:
    [f] = [f for f in evaluate(inventory(mr_user, keys=(mr_primary, mr_replica)),
                               Policy()).findings if f.rule_id == "key-rotation-disabled"]
    assert f.resource.arn == EU_PRIMARY and "db-instance mruser" in f.message
    assert f.remediation is not None
    assert "--region us-east-1" in (f.remediation.steps[0].command or "")


def test_key_users_include_every_role() -> None:
    users = dict(evaluate(inventory(pi_user, secret_user), Policy()).key_users)
    assert set(users[KEY2]) == {pi_user.arn, secret_user.arn}
