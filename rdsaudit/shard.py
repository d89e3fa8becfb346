"""Split an account list between N independent workers, and say which worker this is.

The assignment is a hash of the account id, so every worker of any engine (xargs, AWS
Batch, a Kubernetes Indexed Job, a Step Functions Map) computes the same disjoint parts
without talking to the others, and an account keeps its shard when others join or leave.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rdsaudit.errors import UsageProblem

# Array-job engines number their workers from 0 (AWS Batch, Kubernetes Indexed Jobs).
INDEX_VARIABLES = ("AWS_BATCH_JOB_ARRAY_INDEX", "JOB_COMPLETION_INDEX")
MAX_SHARDS = 10_000


class ShardProblem(UsageProblem, ValueError):
    """A --shard value that cannot be used (exit 2)."""


@dataclass(frozen=True)
class Shard:
    index: int  # 1..count
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, account_id: str) -> bool:
        return shard_of(account_id, self.count) == self.index

    def select(self, accounts: Sequence[str]) -> list[str]:
        return [a for a in accounts if self.owns(a)]


def shard_of(account_id: str, count: int) -> int:
    """The shard (1..count) that scans `account_id`: stable across runs and machines."""
    digest = hashlib.sha256(account_id.encode("ascii", "replace")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def parse_shard(text: str, environ: Mapping[str, str]) -> Shard:
    """`I/N` (I from 1 to N), or `auto/N`: I is 1 + the engine's 0-based array index."""
    index_text, sep, count_text = text.strip().partition("/")
    if not sep or not count_text.isdigit() or not 1 <= int(count_text) <= MAX_SHARDS:
        raise ShardProblem(f"--shard {text!r}: expected INDEX/COUNT with COUNT from 1 to "
                           f"{MAX_SHARDS} (e.g. 2/8, or auto/8)")
    count = int(count_text)
    if index_text == "auto":
        for name in INDEX_VARIABLES:
            value = environ.get(name)
            if value is None:
                continue
            if not value.strip().isdigit():
                raise ShardProblem(f"--shard auto: {name}={value!r} is not a whole number")
            index = int(value) + 1
            if index > count:
                raise ShardProblem(f"--shard auto/{count}: {name}={value} is beyond "
                                   f"{count} shards (it counts from 0)")
            return Shard(index, count)
        raise ShardProblem(f"--shard auto/{count}: none of {', '.join(INDEX_VARIABLES)} is "
                           "set (use INDEX/COUNT outside AWS Batch and Kubernetes)")
    if not index_text.isdigit() or not 1 <= int(index_text) <= count:
        raise ShardProblem(f"--shard {text!r}: INDEX must be from 1 to {count}")
    return Shard(int(index_text), count)
