"""The fake AWS layer: faults in AWS wire shapes, pagination, backups, overlays, control API.

Every test seeds moto in-process (fast), stops the mock keeping the data, then talks to
FakeAWS over real HTTP on 127.0.0.1 through boto3, exactly as rdsaudit will.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.parsers import ResponseParserError
from moto import mock_aws

from rdsaudit.demo.emulator import Call, FakeAWS, Fault

ACCOUNT = "123456789012"
NO_RETRY = Config(retries={"total_max_attempts": 1})
PASSWORD = "correct-horse-battery"


@contextmanager
def served(seed: Callable[[], Any] | None = None, **kwargs: Any) -> Iterator[tuple[FakeAWS, Any]]:
    """Seed moto in-process, serve it through FakeAWS, and wipe moto afterwards."""
    mock = mock_aws()
    mock.start()  # resets every backend
    try:
        data = seed() if seed else None
    finally:
        mock.stop(remove_data=False)
    fake = FakeAWS(**kwargs)
    fake.start()
    try:
        yield fake, data
    finally:
        fake.stop()
        cleanup = mock_aws()
        cleanup.start()
        cleanup.stop()


def client(fake: FakeAWS, service: str, region: str = "us-east-1", config: Config | None = None):
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=fake.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config or NO_RETRY,
    )


def local(service: str, region: str = "us-east-1"):
    """A client for seeding while mock_aws is active (in-process, no HTTP)."""
    return boto3.client(service, region_name=region)


def make_key(region: str = "us-east-1") -> str:
    return local("kms", region).create_key(Description="test")["KeyMetadata"]["Arn"]


def make_instance(ident: str, region: str = "us-east-1", key: str | None = None, **extra: Any):
    kwargs: dict[str, Any] = {
        "DBInstanceIdentifier": ident,
        "Engine": "postgres",
        "DBInstanceClass": "db.t3.micro",
        "MasterUsername": "admin",
        "MasterUserPassword": PASSWORD,
        **extra,
    }
    if key:
        kwargs.update(StorageEncrypted=True, KmsKeyId=key)
    return local("rds", region).create_db_instance(**kwargs)["DBInstance"]


def make_cluster(ident: str, region: str = "us-east-1", key: str | None = None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "DBClusterIdentifier": ident,
        "Engine": "aurora-postgresql",
        "MasterUsername": "admin",
        "MasterUserPassword": PASSWORD,
    }
    if key:
        kwargs.update(StorageEncrypted=True, KmsKeyId=key)
    cluster: dict[str, Any] = local("rds", region).create_db_cluster(**kwargs)["DBCluster"]
    return cluster


def control(fake: FakeAWS, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(fake.endpoint_url + path, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# --------------------------------------------------------------------------- faults


def test_rds_error_fault_has_query_xml_shape() -> None:
    with served(lambda: make_instance("orders-db")) as (fake, _):
        fake.inject_fault(Fault("rds", "DescribeDBInstances"))
        with pytest.raises(ClientError) as info:
            client(fake, "rds").describe_db_instances()
        error = info.value.response["Error"]
        assert error["Code"] == "AccessDenied"
        assert error["Type"] == "Sender"
        assert "rds:DescribeDBInstances" in error["Message"]
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_kms_error_fault_has_json_shape() -> None:
    with served(make_key) as (fake, key):
        fake.inject_fault(
            Fault("kms", "DescribeKey", code="AccessDeniedException", status=400, message="no")
        )
        with pytest.raises(ClientError) as info:
            client(fake, "kms").describe_key(KeyId=key)
        response = info.value.response
        assert response["Error"] == {"Code": "AccessDeniedException", "Message": "no"}
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
        headers = response["ResponseMetadata"]["HTTPHeaders"]
        assert headers["x-amzn-errortype"] == "AccessDeniedException"
        assert headers["content-type"] == "application/x-amz-json-1.1"


def test_ec2_and_sts_error_shapes() -> None:
    with served() as (fake, _):
        fake.inject_fault(Fault("ec2", "DescribeRegions", code="UnauthorizedOperation"))
        fake.inject_fault(Fault("sts", "GetCallerIdentity", code="Throttling", status=400))
        with pytest.raises(ClientError) as ec2_info:
            client(fake, "ec2").describe_regions()
        assert ec2_info.value.response["Error"]["Code"] == "UnauthorizedOperation"
        assert ec2_info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        with pytest.raises(ClientError) as sts_info:
            client(fake, "sts").get_caller_identity()
        assert sts_info.value.response["Error"]["Code"] == "Throttling"
        assert sts_info.value.response["Error"]["Message"] == "Rate exceeded"


def test_5xx_error_is_a_receiver_fault() -> None:
    with served() as (fake, _):
        fake.inject_fault(Fault("rds", "DescribeDBClusters", code="InternalFailure", status=500))
        with pytest.raises(ClientError) as info:
            client(fake, "rds").describe_db_clusters()
        assert info.value.response["Error"]["Type"] == "Receiver"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_fault_scoped_by_region_and_action() -> None:
    def seed() -> None:
        make_instance("orders-db", "us-east-1")
        make_instance("orders-db-eu", "eu-west-1")

    with served(seed) as (fake, _):
        fake.inject_fault(Fault("rds", "DescribeDBSnapshots", region="eu-west-1"))
        us, eu = client(fake, "rds", "us-east-1"), client(fake, "rds", "eu-west-1")
        assert len(us.describe_db_snapshots()["DBSnapshots"]) == 1
        assert eu.describe_db_instances()["DBInstances"][0]["DBInstanceIdentifier"] == (
            "orders-db-eu"
        )
        with pytest.raises(ClientError):
            eu.describe_db_snapshots()
        assert [(c.region, c.action, c.status) for c in fake.calls()] == [
            ("us-east-1", "DescribeDBSnapshots", 200),
            ("eu-west-1", "DescribeDBInstances", 200),
            ("eu-west-1", "DescribeDBSnapshots", 403),
        ]


def test_fault_match_on_request_body() -> None:
    with served(lambda: (make_key(), make_key())) as (fake, keys):
        denied, allowed = keys
        fake.inject_fault(
            Fault("kms", "DescribeKey", code="AccessDeniedException", status=400, match=denied)
        )
        kms = client(fake, "kms")
        assert kms.describe_key(KeyId=allowed)["KeyMetadata"]["Arn"] == allowed
        with pytest.raises(ClientError) as info:
            kms.describe_key(KeyId=denied)
        assert info.value.response["Error"]["Code"] == "AccessDeniedException"


def test_fault_match_sees_url_decoded_query_body() -> None:
    with served(lambda: make_instance("orders-db")) as (fake, _):
        arn = f"arn:aws:rds:us-east-1:{ACCOUNT}:db:orders-db"
        fake.inject_fault(Fault("rds", "DescribeDBInstances", match=arn))
        rds = client(fake, "rds")
        assert rds.describe_db_instances()["DBInstances"]
        with pytest.raises(ClientError):
            rds.describe_db_instances(DBInstanceIdentifier=arn)


def test_fault_times_then_recovers() -> None:
    with served(lambda: make_instance("orders-db")) as (fake, _):
        fake.inject_fault(Fault("rds", "DescribeDBInstances", code="Throttling", status=400,
                                times=2))
        rds = client(fake, "rds")
        for _ in range(2):
            with pytest.raises(ClientError):
                rds.describe_db_instances()
        assert rds.describe_db_instances()["DBInstances"]
        assert [c.status for c in fake.calls()] == [400, 400, 200]
        assert fake.faults()[0]["fired"] == 2


def test_fault_page_fails_only_the_nth_request() -> None:
    def seed() -> None:
        for i in range(3):
            make_instance(f"db-{i}")

    with served(seed, page_size_cap=1) as (fake, _):
        fake.inject_fault(Fault("rds", "DescribeDBSnapshots", code="Throttling", status=400,
                                page=2))
        paginator = client(fake, "rds").get_paginator("describe_db_snapshots")
        with pytest.raises(ClientError):
            list(paginator.paginate())
        assert [c.status for c in fake.calls()] == [200, 400]
        pages = list(paginator.paginate())  # the fault has had its second request
        assert sum(len(p["DBSnapshots"]) for p in pages) == 3


def test_wildcard_action_and_clear_faults() -> None:
    with served() as (fake, _):
        fake.inject_fault(Fault("rds", "*"))
        rds = client(fake, "rds")
        with pytest.raises(ClientError):
            rds.describe_db_clusters()
        with pytest.raises(ClientError):
            rds.describe_db_snapshots()
        assert client(fake, "kms").list_keys()["Keys"] == []
        fake.clear_faults()
        assert rds.describe_db_clusters()["DBClusters"] == []


def test_timeout_fault_fires_client_read_timeout_and_stop_is_prompt() -> None:
    with served() as (fake, _):
        fake.inject_fault(Fault("rds", "DescribeDBInstances", kind="timeout", delay=20))
        config = Config(retries={"total_max_attempts": 1}, read_timeout=0.5, connect_timeout=2)
        before = set(threading.enumerate())
        started = time.monotonic()
        with pytest.raises(ReadTimeoutError):
            client(fake, "rds", config=config).describe_db_instances()
        assert time.monotonic() - started < 5
        handlers = [t for t in set(threading.enumerate()) - before if "request" in t.name]
        assert handlers and all(t.is_alive() for t in handlers)  # still sleeping server-side
        stopping = time.monotonic()
        fake.stop()  # must wake the sleeping request thread, not leave it for 20 s
        for t in handlers:
            t.join(timeout=3)
        assert not any(t.is_alive() for t in handlers)
        assert time.monotonic() - stopping < 5


def test_malformed_fault_truncates_a_200_body() -> None:
    with served(lambda: (make_instance("orders-db"), make_key())) as (fake, seeded):
        _, key = seeded
        fake.inject_fault(Fault("rds", "DescribeDBInstances", kind="malformed"))
        fake.inject_fault(Fault("kms", "DescribeKey", kind="malformed"))
        with pytest.raises(ResponseParserError):
            client(fake, "rds").describe_db_instances()
        # botocore's JSON parser does not raise on a broken body: the data is simply missing.
        assert "KeyMetadata" not in client(fake, "kms").describe_key(KeyId=key)
        assert [(c.status, c.fault) for c in fake.calls()] == [
            (200, "malformed"),
            (200, "malformed"),
        ]


def test_latency_fault_and_global_latency() -> None:
    with served(latency=0.2) as (fake, _):
        rds = client(fake, "rds")
        started = time.monotonic()
        rds.describe_db_clusters()
        assert time.monotonic() - started >= 0.2
        fake.inject_fault(Fault("rds", "DescribeDBClusters", kind="latency", delay=0.4))
        started = time.monotonic()
        assert rds.describe_db_clusters()["DBClusters"] == []
        assert time.monotonic() - started >= 0.6
        assert fake.calls()[-1].fault == "latency"


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="kind"):
        Fault("rds", "DescribeDBInstances", kind="explode")
    with pytest.raises(ValueError, match="page"):
        Fault("rds", "DescribeDBInstances", page=0)
    with pytest.raises(ValueError, match="unknown Fault fields"):
        Fault.from_json({"service": "rds", "action": "X", "error": "Throttling"})


def test_moto_exception_becomes_aws_shaped_500() -> None:
    with served() as (fake, _):
        with pytest.raises(ClientError) as info:
            client(fake, "rds").delete_db_instance_automated_backup(DbiResourceId="db-X")
        assert info.value.response["Error"]["Code"] == "InternalFailure"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


# --------------------------------------------------------------------------- pagination


def _seed_listing_estate() -> dict[str, Any]:
    key = make_key()
    rds = local("rds")
    for i in range(3):
        make_instance(f"app-{i}", key=key if i % 2 else None)
        rds.create_db_snapshot(DBInstanceIdentifier=f"app-{i}", DBSnapshotIdentifier=f"snap-{i}")
    for i in range(3):
        make_cluster(f"aurora-{i}", key=key)
        rds.create_db_cluster_snapshot(
            DBClusterIdentifier=f"aurora-{i}", DBClusterSnapshotIdentifier=f"csnap-{i}"
        )
    kms = local("kms")
    for i in range(3):
        kms.create_alias(AliasName=f"alias/app-{i}", TargetKeyId=key)
    return {"key": key}


@pytest.mark.parametrize(
    ("operation", "result_key", "expected"),
    [
        ("describe_db_instances", "DBInstances", 3),
        ("describe_db_snapshots", "DBSnapshots", 6),  # 3 automated + 3 manual
        ("describe_db_clusters", "DBClusters", 3),
        ("describe_db_cluster_snapshots", "DBClusterSnapshots", 6),
        ("describe_db_instance_automated_backups", "DBInstanceAutomatedBackups", 3),
    ],
)
def test_rds_listings_paginate(operation: str, result_key: str, expected: int) -> None:
    with served(_seed_listing_estate, page_size_cap=2) as (fake, _):
        pages = list(client(fake, "rds").get_paginator(operation).paginate())
        sizes = [len(p[result_key]) for p in pages]
        assert sizes == [2] * (expected // 2) + ([expected % 2] if expected % 2 else [])
        assert all("Marker" in p for p in pages[:-1]) and "Marker" not in pages[-1]
        ids = [
            json.dumps(item, sort_keys=True, default=str) for p in pages for item in p[result_key]
        ]
        assert len(set(ids)) == expected
        action = "".join(part.title() for part in operation.split("_")).replace("Db", "DB")
        assert fake.call_counts()[f"rds:{action}"] == len(pages)


def test_cluster_automated_backups_paginate() -> None:
    with served(page_size_cap=2) as (fake, _):
        for i in range(5):
            fake.register_cluster_automated_backup("us-east-1", {"DBClusterIdentifier": f"old-{i}"})
        pages = list(
            client(fake, "rds").get_paginator("describe_db_cluster_automated_backups").paginate()
        )
        assert [len(p["DBClusterAutomatedBackups"]) for p in pages] == [2, 2, 1]
        ids = [b["DBClusterIdentifier"] for p in pages for b in p["DBClusterAutomatedBackups"]]
        assert ids == [f"old-{i}" for i in range(5)]


def test_kms_list_aliases_paginates() -> None:
    with served(_seed_listing_estate, page_size_cap=4) as (fake, _):
        kms = client(fake, "kms")
        everything = [a["AliasName"] for a in kms.list_aliases(Limit=100)["Aliases"]]
        assert len(everything) == 4  # capped
        pages = list(kms.get_paginator("list_aliases").paginate())
        names = [a["AliasName"] for p in pages for a in p["Aliases"]]
        assert {"alias/app-0", "alias/app-1", "alias/app-2", "alias/aws/rds"} <= set(names)
        assert len(names) == len(set(names)) == 17  # 14 predefined aws/* + 3
        assert [len(p["Aliases"]) for p in pages] == [4, 4, 4, 4, 1]
        assert all(p["Truncated"] for p in pages[:-1]) and not pages[-1]["Truncated"]
        assert "NextMarker" not in pages[-1]


def test_page_sizes_follow_aws_bounds_without_cap() -> None:
    def seed() -> None:
        for i in range(11):
            make_instance(f"db-{i}")
            local("rds").create_db_snapshot(
                DBInstanceIdentifier=f"db-{i}", DBSnapshotIdentifier=f"s-{i}"
            )

    with served(seed) as (fake, _):
        rds = client(fake, "rds")
        first = rds.describe_db_snapshots(MaxRecords=5)  # AWS minimum is 20
        assert len(first["DBSnapshots"]) == 20
        second = rds.describe_db_snapshots(MaxRecords=5, Marker=first["Marker"])
        assert len(second["DBSnapshots"]) == 2 and "Marker" not in second
        assert len(rds.describe_db_snapshots(MaxRecords=500)["DBSnapshots"]) == 22
        assert len(rds.describe_db_instances(MaxRecords=5)["DBInstances"]) == 11
        kms = client(fake, "kms")
        assert len(kms.list_aliases(Limit=3)["Aliases"]) == 3
        assert len(kms.list_aliases()["Aliases"]) == 14


def test_bad_marker_is_a_client_error() -> None:
    with served() as (fake, _):
        with pytest.raises(ClientError) as info:
            client(fake, "rds").describe_db_snapshots(Marker="not-a-marker")
        assert info.value.response["Error"]["Code"] == "InvalidParameterValue"
        with pytest.raises(ClientError) as kms_info:
            client(fake, "kms").list_aliases(Marker="garbage")
        assert kms_info.value.response["Error"]["Code"] == "InvalidMarkerException"


# --------------------------------------------------------------------------- backups


def test_cluster_automated_backups_from_the_layer() -> None:
    with served() as (fake, _):
        rds = client(fake, "rds")
        assert rds.describe_db_cluster_automated_backups()["DBClusterAutomatedBackups"] == []
        fake.register_cluster_automated_backup(
            "us-east-1",
            {
                "DBClusterIdentifier": "legacy-aurora",
                "Engine": "aurora-mysql",
                "BackupRetentionPeriod": 7,
                "TagList": [{"Key": "team", "Value": "data"}],
            },
        )
        (backup,) = rds.describe_db_cluster_automated_backups()["DBClusterAutomatedBackups"]
        assert backup["DBClusterIdentifier"] == "legacy-aurora"
        assert backup["StorageEncrypted"] is False
        assert backup["StorageEncryptionType"] == "none"
        assert backup["Status"] == "retained"
        assert backup["Region"] == "us-east-1"
        assert backup["BackupRetentionPeriod"] == 7
        assert backup["TagList"] == [{"Key": "team", "Value": "data"}]
        assert backup["DBClusterAutomatedBackupsArn"].startswith(
            f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster-auto-backup:cab-"
        )
        assert backup["DBClusterArn"] == f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster:legacy-aurora"
        one = rds.describe_db_cluster_automated_backups(DBClusterIdentifier="legacy-aurora")
        assert len(one["DBClusterAutomatedBackups"]) == 1
        with pytest.raises(ClientError) as info:
            rds.describe_db_cluster_automated_backups(DBClusterIdentifier="nope")
        assert info.value.response["Error"]["Code"] == "DBClusterAutomatedBackupNotFoundFault"
        eu = client(fake, "rds", "eu-west-1").describe_db_cluster_automated_backups()
        assert eu["DBClusterAutomatedBackups"] == []


def test_instance_automated_backups_are_enriched() -> None:
    def seed() -> str:
        key = make_key()
        make_instance("orders-db", key=key, BackupRetentionPeriod=7)
        make_instance("reporting-db", BackupRetentionPeriod=3)
        make_instance("scratch-db", BackupRetentionPeriod=0)
        make_instance("old-billing-db", key=key, BackupRetentionPeriod=14)
        make_instance("old-crm-db", BackupRetentionPeriod=5)
        make_cluster("aurora", key=key)
        make_instance(
            "aurora-1",
            DBClusterIdentifier="aurora",
            Engine="aurora-postgresql",
            DBInstanceClass="db.r6g.large",
        )
        rds = local("rds")
        for ident in ("old-billing-db", "old-crm-db"):
            rds.delete_db_instance(
                DBInstanceIdentifier=ident, SkipFinalSnapshot=True, DeleteAutomatedBackups=False
            )
        return key

    with served(seed) as (fake, key):
        backups = client(fake, "rds").describe_db_instance_automated_backups()
        by_id = {b["DBInstanceIdentifier"]: b for b in backups["DBInstanceAutomatedBackups"]}
        # retention 0 and Aurora members are not listed, as in AWS
        assert set(by_id) == {"orders-db", "reporting-db", "old-billing-db", "old-crm-db"}
        orders = by_id["orders-db"]
        assert orders["Status"] == "active"
        assert orders["Encrypted"] is True and orders["KmsKeyId"] == key
        assert orders["StorageEncryptionType"] == "sse-kms"
        assert orders["BackupRetentionPeriod"] == 7
        assert orders["Engine"] == "postgres"
        assert orders["Region"] == "us-east-1"
        assert orders["DBInstanceArn"] == f"arn:aws:rds:us-east-1:{ACCOUNT}:db:orders-db"
        assert orders["DbiResourceId"]
        reporting = by_id["reporting-db"]
        assert reporting["Encrypted"] is False and "KmsKeyId" not in reporting
        assert reporting["StorageEncryptionType"] == "none"
        billing, crm = by_id["old-billing-db"], by_id["old-crm-db"]
        assert billing["Status"] == crm["Status"] == "retained"
        assert billing["Encrypted"] is True and billing["KmsKeyId"] == key
        assert billing["BackupRetentionPeriod"] == 14
        assert crm["Encrypted"] is False and crm["BackupRetentionPeriod"] == 5
        arns = {b["DBInstanceAutomatedBackupsArn"] for b in by_id.values()}
        assert len(arns) == 4
        assert all(a.startswith(f"arn:aws:rds:us-east-1:{ACCOUNT}:auto-backup:ab-") for a in arns)
        again = client(fake, "rds").describe_db_instance_automated_backups()
        assert {
            b["DBInstanceAutomatedBackupsArn"] for b in again["DBInstanceAutomatedBackups"]
        } == (arns)


# --------------------------------------------------------------------------- overlays


def test_overlay_patches_rds_members_by_their_own_arn() -> None:
    def seed() -> tuple[str, dict[str, Any], dict[str, Any]]:
        key = make_key()
        return key, make_cluster("billing-aurora", key=key), make_cluster("other", key=key)

    with served(seed) as (fake, seeded):
        key, billing, other = seeded
        fake.overlay(
            billing["DBClusterArn"], {"StorageEncryptionType": "sse-rds", "KmsKeyId": None}
        )
        clusters = {
            c["DBClusterIdentifier"]: c
            for c in client(fake, "rds").describe_db_clusters()["DBClusters"]
        }
        assert clusters["billing-aurora"]["StorageEncryptionType"] == "sse-rds"
        assert "KmsKeyId" not in clusters["billing-aurora"]
        assert clusters["billing-aurora"]["StorageEncrypted"] is True
        assert clusters["other"]["KmsKeyId"] == key
        assert "StorageEncryptionType" not in clusters["other"]
        assert other["DBClusterArn"] != billing["DBClusterArn"]


def test_overlay_on_instances_and_replacing_a_field() -> None:
    def seed() -> str:
        return str(make_instance("orders-db")["DBInstanceArn"])

    with served(seed, page_size_cap=1) as (fake, arn):
        fake.overlay(arn, {"DBInstanceStatus": "inaccessible-encryption-credentials"})
        fake.overlay(arn, {"StorageEncryptionType": "none"})  # merges with the first
        (instance,) = client(fake, "rds").describe_db_instances()["DBInstances"]
        assert instance["DBInstanceStatus"] == "inaccessible-encryption-credentials"
        assert instance["StorageEncryptionType"] == "none"
        fake.clear_overlays()
        (instance,) = client(fake, "rds").describe_db_instances()["DBInstances"]
        assert instance["DBInstanceStatus"] == "available"


def test_overlay_patches_kms_key_metadata() -> None:
    with served(lambda: (make_key(), make_key())) as (fake, keys):
        managed, customer = keys
        fake.overlay(managed, {"KeyManager": "AWS", "Description": None})
        kms = client(fake, "kms")
        meta = kms.describe_key(KeyId=managed)["KeyMetadata"]
        assert meta["KeyManager"] == "AWS" and "Description" not in meta
        assert kms.describe_key(KeyId=customer)["KeyMetadata"]["KeyManager"] == "CUSTOMER"


def test_namespace_is_preserved_in_rewritten_xml() -> None:
    with served(lambda: make_instance("orders-db"), page_size_cap=1) as (fake, _):
        seen: list[bytes] = []
        rds = client(fake, "rds")
        rds.meta.events.register(
            "before-parse.rds.*", lambda response_dict, **_: seen.append(response_dict["body"])
        )
        rds.describe_db_instance_automated_backups()
        assert seen[0].startswith(
            b'<DescribeDBInstanceAutomatedBackupsResponse xmlns="http://rds.amazonaws.com/doc/'
        )
        assert b"ns0:" not in seen[0]


# --------------------------------------------------------------------------- control API


def test_http_control_api() -> None:
    with served(make_key) as (fake, key):
        kms = client(fake, "kms")
        status, _ = control(
            fake,
            "POST",
            "/_fault",
            {
                "service": "kms",
                "action": "DescribeKey",
                "code": "AccessDeniedException",
                "status": 400,
                "match": key,
                "times": 1,
            },
        )
        assert status == 200
        with pytest.raises(ClientError):
            kms.describe_key(KeyId=key)
        status, faults = control(fake, "GET", "/_fault")
        assert faults[0]["fired"] == 1 and faults[0]["match"] == key
        assert kms.describe_key(KeyId=key)  # times=1 used up
        status, calls = control(fake, "GET", "/_calls")
        assert [(c["service"], c["action"], c["status"]) for c in calls] == [
            ("kms", "DescribeKey", 400),
            ("kms", "DescribeKey", 200),
        ]
        assert control(fake, "GET", "/_counts") == (200, {"kms:DescribeKey": 2})
        assert control(fake, "DELETE", "/_calls")[0] == 200
        assert fake.calls() == []

        assert (
            control(fake, "POST", "/_overlay", {"arn": key, "fields": {"KeyManager": "AWS"}})[0]
            == 200
        )
        assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyManager"] == "AWS"
        assert control(fake, "DELETE", "/_overlay")[0] == 200
        assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyManager"] == "CUSTOMER"

        status, record = control(
            fake,
            "POST",
            "/_cluster_automated_backup",
            {"region": "eu-west-1", "fields": {"DBClusterIdentifier": "gone"}},
        )
        assert status == 200 and record["Region"] == "eu-west-1"
        listed = client(fake, "rds", "eu-west-1").describe_db_cluster_automated_backups()
        assert [b["DBClusterIdentifier"] for b in listed["DBClusterAutomatedBackups"]] == ["gone"]

        control(fake, "POST", "/_fault", {"service": "rds", "action": "*"})
        assert control(fake, "DELETE", "/_fault")[0] == 200
        assert fake.faults() == []
        assert (
            control(fake, "POST", "/_fault", {"service": "rds", "action": "X", "kind": "boom"})[0]
            == 400
        )
        assert control(fake, "POST", "/_fault", {"service": "rds", "bogus": 1})[0] == 400
        assert control(fake, "GET", "/_nothing")[0] == 404
        # control requests are not AWS calls
        assert all(c.service for c in fake.calls())
        assert fake.call_counts() == {
            "kms:DescribeKey": 2,
            "rds:DescribeDBClusterAutomatedBackups": 1,
        }


# --------------------------------------------------------------------------- counting


def test_call_counting_is_thread_safe_and_requests_run_concurrently() -> None:
    with served(make_key) as (fake, key):
        fake.inject_fault(Fault("kms", "GetKeyRotationStatus", kind="latency", delay=2.0))
        errors: list[BaseException] = []
        counted = threading.Barrier(6)
        slow: list[float] = []

        def worker() -> None:
            try:
                kms = client(fake, "kms")
                for _ in range(10):
                    kms.describe_key(KeyId=key)
                counted.wait(timeout=120)
                started = time.monotonic()
                kms.get_key_rotation_status(KeyId=key)
                slow.append(time.monotonic() - started)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert fake.call_counts() == {"kms:DescribeKey": 60, "kms:GetKeyRotationStatus": 6}
        # Six 2 s latency faults started together: served one after another, the last would
        # wait 12 s. The margin (9 s) holds on a loaded machine; only the slow calls are
        # timed, not the 60 counted ones.
        assert len(slow) == 6 and max(slow) < 9.0, slow
        assert all(isinstance(c, Call) and c.region == "us-east-1" for c in fake.calls())
        fake.reset_calls()
        assert fake.call_counts() == {}


def test_endpoint_url_and_lifecycle() -> None:
    fake = FakeAWS()
    with pytest.raises(RuntimeError):
        _ = fake.endpoint_url
    with fake:
        assert fake.endpoint_url.startswith("http://127.0.0.1:")
        assert fake.start() == fake.endpoint_url  # idempotent
    fake.stop()  # idempotent
    with pytest.raises(RuntimeError):
        _ = fake.endpoint_url
