"""Pagination moto does not do: which listings it answers in one page, AWS's page sizes, and
the opaque markers the layer hands out (a cached listing's id and an offset)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Final

# RDS listings moto answers in one page: action -> (list element, member element).
RDS_PAGED: Final[dict[str, tuple[str, str]]] = {
    "DescribeDBSnapshots": ("DBSnapshots", "DBSnapshot"),
    "DescribeDBClusters": ("DBClusters", "DBCluster"),
    "DescribeDBClusterSnapshots": ("DBClusterSnapshots", "DBClusterSnapshot"),
    "DescribeDBInstanceAutomatedBackups": (
        "DBInstanceAutomatedBackups",
        "DBInstanceAutomatedBackup",
    ),
    "DescribeDBClusterAutomatedBackups": ("DBClusterAutomatedBackups", "DBClusterAutomatedBackup"),
}


# KMS listings moto answers in one page: action -> (result key, min, max, default Limit).
KMS_PAGED: Final[dict[str, tuple[str, int, int, int]]] = {
    "ListAliases": ("Aliases", 1, 100, 50),
    "ListKeys": ("Keys", 1, 1000, 100),
}


RDS_MAX_RECORDS: Final = (20, 100, 100)  # AWS: min 20, max 100, default 100


PAGE_CACHE_SIZE: Final = 64


def encode_marker(cache_id: str, offset: int) -> str:
    raw = json.dumps({"c": cache_id, "o": offset}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_marker(marker: str) -> tuple[str, int]:
    try:
        data = json.loads(base64.urlsafe_b64decode(marker.encode()))
        cache_id, offset = str(data["c"]), int(data["o"])
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"invalid marker {marker!r}") from exc
    if offset < 0:
        raise ValueError(f"invalid marker {marker!r}")
    return cache_id, offset
