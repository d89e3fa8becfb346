"""Amazon Resource Names: parse once, compare by parts.

Partition-aware (`arn:aws:`, `arn:aws-cn:`, `arn:aws-us-gov:`), because key and resource
ARNs from China or GovCloud must be judged the same way.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):"
    r"(?P<account>\d{12}|):(?P<resource>.+)$"
)
_KEY_ID = re.compile(
    r"^(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
)


@dataclass(frozen=True)
class Arn:
    partition: str
    service: str
    region: str
    account: str
    resource: str

    @staticmethod
    def parse(text: str) -> Arn | None:
        return _parse(text)

    def __str__(self) -> str:
        return f"arn:{self.partition}:{self.service}:{self.region}:{self.account}:{self.resource}"


@functools.lru_cache(maxsize=65536)
def _parse(text: str) -> Arn | None:
    # Cached: the same key ARNs are parsed once per resource that uses them.
    m = _ARN.match(text)
    if m is None:
        return None
    return Arn(m["partition"], m["service"], m["region"], m["account"], m["resource"])


def is_key_id(text: str) -> bool:
    """A bare KMS key id (uuid or multi-Region `mrk-…`)."""
    return _KEY_ID.match(text) is not None


def key_arn(partition: str, region: str, account: str, key_id: str) -> str:
    return f"arn:{partition}:kms:{region}:{account}:key/{key_id}"


def partition_of_region(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("us-iso-"):
        return "aws-iso"
    if region.startswith("us-isob-"):
        return "aws-iso-b"
    return "aws"
