"""rdsaudit is read-only by construction: only Describe, List and Get calls, and the
opt-in writes each flag allows.
"""

from __future__ import annotations

READ_ONLY_PREFIXES = ("Describe", "List", "Get")


# The only writes rdsaudit may make, each under its own flag (DESIGN.md, "opt-in writes").
# A client allows one only when built with it in `allowed_writes`, i.e. when its flag is on.
OPT_IN_WRITES = {
    "--security-hub": frozenset({"BatchImportFindings"}),
    "--output-dir s3://": frozenset({"PutObject"}),
    "--notify sns:": frozenset({"Publish"}),
}


class MutatingCallRefused(RuntimeError):
    """A programming error: something asked for a call that could change an account."""


def refuse_mutation(operation: str) -> None:
    if not operation.startswith(READ_ONLY_PREFIXES):
        raise MutatingCallRefused(f"{operation} is not a read-only operation")
