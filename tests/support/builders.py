"""Hand-built inventories for rule and report tests: no AWS at all."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rdsaudit.model import (
    CollectionError,
    EncryptionType,
    Inventory,
    KeyLookup,
    KmsAlias,
    KmsKey,
    Resource,
    ResourceType,
    RotationLookup,
    ScanInfo,
    SkippedRegion,
    SnapshotShare,
    Trail,
)

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "999988887777"
REGION = "us-east-1"
FINISHED = "2026-11-27T12:00:00Z"


def key_arn(key_id: str = "11111111-2222-3333-4444-555555555555", region: str = REGION,
            account: str = ACCOUNT) -> str:
    return f"arn:aws:kms:{region}:{account}:key/{key_id}"


KEY = key_arn()
KEY2 = key_arn("22222222-2222-3333-4444-555555555555")


def kms_key(arn: str = KEY, **kw: Any) -> KmsKey:
    region, account = arn.split(":")[3], arn.split(":")[4]
    base = KmsKey(arn=arn, region=region, account_id=account, lookup=KeyLookup.OK,
                  key_state="Enabled", key_manager="CUSTOMER", origin="AWS_KMS",
                  rotation=RotationLookup.OK, rotation_enabled=True)
    return replace(base, **kw)


_ARN_KIND = {
    ResourceType.DB_INSTANCE: "db",
    ResourceType.DB_CLUSTER: "cluster",
    ResourceType.DB_SNAPSHOT: "snapshot",
    ResourceType.DB_CLUSTER_SNAPSHOT: "cluster-snapshot",
    ResourceType.DB_AUTOMATED_BACKUP: "auto-backup",
}


def resource(rtype: ResourceType, rid: str, *, encrypted: bool | None = True,
             key: str | None = KEY, region: str = REGION, account: str = ACCOUNT,
             **kw: Any) -> Resource:
    enc_type = kw.pop("encryption_type", None)
    if enc_type is None and encrypted is not None:
        enc_type = EncryptionType.SSE_KMS if encrypted else EncryptionType.NONE
    return Resource(
        type=rtype, arn=f"arn:aws:rds:{region}:{account}:{_ARN_KIND[rtype]}:{rid}", id=rid,
        region=region, account_id=account, encrypted=encrypted, encryption_type=enc_type,
        kms_key_id=key if encrypted else None, **kw)


def instance(rid: str = "db1", **kw: Any) -> Resource:
    kw.setdefault("engine", "postgres")
    kw.setdefault("status", "available")
    kw.setdefault("backup_retention", 7)
    kw.setdefault("instance_class", "db.t3.micro")
    return resource(ResourceType.DB_INSTANCE, rid, **kw)


def cluster(rid: str = "cl1", **kw: Any) -> Resource:
    kw.setdefault("engine", "aurora-postgresql")
    kw.setdefault("status", "available")
    kw.setdefault("backup_retention", 1)
    return resource(ResourceType.DB_CLUSTER, rid, **kw)


def snapshot(rid: str = "snap1", **kw: Any) -> Resource:
    kw.setdefault("snapshot_type", "manual")
    kw.setdefault("source_id", "db1")
    return resource(ResourceType.DB_SNAPSHOT, rid, **kw)


def cluster_snapshot(rid: str = "csnap1", **kw: Any) -> Resource:
    kw.setdefault("snapshot_type", "manual")
    kw.setdefault("source_id", "cl1")
    return resource(ResourceType.DB_CLUSTER_SNAPSHOT, rid, **kw)


def backup(rid: str = "ab-1", **kw: Any) -> Resource:
    kw.setdefault("snapshot_type", "automated")
    kw.setdefault("source_id", "db1")
    kw.setdefault("status", "retained")
    return resource(ResourceType.DB_AUTOMATED_BACKUP, rid, **kw)


def inventory(*resources: Resource, keys: tuple[KmsKey, ...] | None = None,
              aliases: tuple[KmsAlias, ...] = (), shares: tuple[SnapshotShare, ...] = (),
              errors: tuple[CollectionError, ...] = (),
              skipped: tuple[SkippedRegion, ...] = (),
              regions: tuple[str, ...] = (REGION, "eu-west-1"),
              trails: tuple[Trail, ...] | None = None) -> Inventory:
    if keys is None:
        keys = (kms_key(KEY), kms_key(KEY2))
    return Inventory(
        scan=ScanInfo(started_at="2026-11-27T11:59:00Z", finished_at=FINISHED,
                      accounts=(ACCOUNT,), regions=regions, skipped_regions=skipped,
                      api_calls=(("cloudtrail:DescribeTrails", len(regions)),)
                      if trails is not None else ()),
        resources=resources, keys=keys, aliases=aliases, shares=shares, errors=errors,
        trails=trails or ())


def trail(name: str = "audit", home: str = REGION, *, multi_region: bool = False,
          logging: bool | None = True, logs_kms: bool | None = True, note: str | None = None,
          regions: tuple[str, ...] | None = None, organization: bool = False) -> Trail:
    seen = regions if regions is not None else ((REGION, "eu-west-1") if multi_region
                                                 else (home,))
    return Trail(f"arn:aws:cloudtrail:{home}:{ACCOUNT}:trail/{name}", ACCOUNT, home, name,
                 multi_region, organization, seen, logging, logs_kms, note)
