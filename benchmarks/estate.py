"""Benchmark estates: N resources over 4 regions, seeded straight into moto's backends.

Seeding through moto's backend objects in the serving process is the fast path
(moto-fidelity §9: ~5,000 creations/s against ~150/s over HTTP). What one region holds, for a
share `n` of the total:

* 20% DB instances, each bringing the automated snapshot and automated backup moto makes for
  it (3 resources per instance); every fifth instance is unencrypted;
* manual DB snapshots for the rest after the cluster share: one in five unencrypted (those
  are the ones that cost a DescribeDBSnapshotAttributes call each);
* 2% Aurora clusters (each with moto's automated cluster snapshot), 6% manual cluster
  snapshots (one in five unencrypted), 2% retained cluster automated backups (served by the
  emulator layer, as moto has none).

Keys: `keys_per_region` customer managed keys per region (rotation on for half), with an
alias each, plus the AWS managed `aws/rds` key; resources take keys round-robin, always by
explicit key ARN (moto-fidelity §11.1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "123456789012"  # moto's default account
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2")
KEYS_PER_REGION = 16


@dataclass(frozen=True)
class RegionPlan:
    instances: int
    manual_snapshots: int
    clusters: int
    cluster_snapshots: int
    cluster_backups: int

    @property
    def resources(self) -> int:
        return (3 * self.instances + self.manual_snapshots + 2 * self.clusters
                + self.cluster_snapshots + self.cluster_backups)


def plan_region(n: int) -> RegionPlan:
    """Counts for one region holding `n` resources (exactly, for n >= 10)."""
    instances = max(1, n // 5)
    clusters = max(1, n // 50)
    cluster_snapshots = max(1, 3 * n // 50)
    cluster_backups = max(1, n // 50)
    fixed = 3 * instances + 2 * clusters + cluster_snapshots + cluster_backups
    return RegionPlan(instances, max(0, n - fixed), clusters, cluster_snapshots,
                      cluster_backups)


@dataclass
class Seeded:
    """What was seeded, for the server (cluster backups) and the report."""

    size: int
    regions: tuple[str, ...]
    keys: dict[str, list[str]] = field(default_factory=dict)  # region -> customer key ARNs
    aws_managed: dict[str, str] = field(default_factory=dict)  # region -> aws/rds key ARN
    cluster_backups: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    resources: int = 0


def seed(size: int, regions: tuple[str, ...] = REGIONS,
         keys_per_region: int = KEYS_PER_REGION) -> Seeded:
    """Create the estate; call with moto's `mock_aws` started (see server.py)."""
    os.environ.setdefault("MOTO_RDS_SNAPSHOT_LIMIT", "10000000")
    import boto3
    from botocore.config import Config
    from moto.kms.models import kms_backends
    from moto.rds.models import rds_backends

    out = Seeded(size=size, regions=regions)
    per_region = [size // len(regions) + (1 if i < size % len(regions) else 0)
                  for i in range(len(regions))]
    config = Config(ignore_configured_endpoint_urls=True)
    for region, n in zip(regions, per_region, strict=True):
        kms = boto3.client("kms", region_name=region, config=config)
        keys = []
        for k in range(keys_per_region):
            meta = kms.create_key(Description=f"bench {region} {k}")["KeyMetadata"]
            kms.create_alias(AliasName=f"alias/bench-{k}", TargetKeyId=meta["KeyId"])
            if k % 2 == 0:
                kms.enable_key_rotation(KeyId=meta["KeyId"])
            keys.append(str(meta["Arn"]))
        # Seeding only: DescribeKey on the predefined alias creates the AWS managed key
        # (rdsaudit itself never does this); moto calls it CUSTOMER, AWS says AWS.
        managed = kms.describe_key(KeyId="alias/aws/rds")["KeyMetadata"]
        backend_key = kms_backends[ACCOUNT][region].keys[managed["KeyId"]]
        backend_key.key_manager = "AWS"
        backend_key.key_rotation_status = True
        out.keys[region] = keys
        out.aws_managed[region] = str(managed["Arn"])
        all_keys = [*keys, str(managed["Arn"])]

        rds = rds_backends[ACCOUNT][region]
        plan = plan_region(n)
        for i in range(plan.instances):
            encrypted = i % 5 != 4
            kwargs: dict[str, Any] = {
                "db_instance_identifier": f"db-{i:06d}",
                "db_instance_class": "db.m6g.large",
                "engine": ("postgres", "mysql")[i % 2],
                "engine_version": ("16.3", "8.0.36")[i % 2],
                "allocated_storage": 100,
                "master_username": "admin",
                "backup_retention_period": 7,
                "storage_encrypted": encrypted,
                "tags": [{"Key": "team", "Value": f"team-{i % 7}"}],
            }
            if encrypted:
                kwargs["kms_key_id"] = all_keys[i % len(all_keys)]
            rds.create_db_instance(kwargs)
        for s in range(plan.manual_snapshots):
            # Instance i is unencrypted when i % 5 == 4: one manual snapshot in five.
            rds.create_db_snapshot(f"db-{s % plan.instances:06d}", f"snap-{s:06d}")
        for c in range(plan.clusters):
            encrypted = c % 5 != 4
            ckw: dict[str, Any] = {
                "db_cluster_identifier": f"aurora-{c:05d}",
                "engine": "aurora-postgresql",
                "engine_version": "16.2",
                "master_username": "admin",
                "master_user_password": "bench-not-a-secret",
                "backup_retention_period": 7,
                "storage_encrypted": encrypted,
            }
            if encrypted:
                ckw["kms_key_id"] = all_keys[c % len(all_keys)]
            rds.create_db_cluster(ckw)
        for s in range(plan.cluster_snapshots):
            rds.create_db_cluster_snapshot(f"aurora-{s % plan.clusters:05d}",
                                           f"csnap-{s:05d}")
        for b in range(plan.cluster_backups):
            encrypted = b % 5 != 4
            fields: dict[str, Any] = {"DBClusterIdentifier": f"gone-{b:05d}",
                                      "StorageEncrypted": encrypted, "Engine": "aurora-mysql"}
            if encrypted:
                fields["KmsKeyId"] = keys[b % len(keys)]
            out.cluster_backups.append((region, fields))
        out.resources += plan.resources
    return out
