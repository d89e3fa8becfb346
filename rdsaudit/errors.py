"""Input the user can fix: one base for every such error, caught once by the CLI (exit 2).

A flag, a config file, a waiver file, a saved inventory or report, an account list, a shard
or an s3:// location that cannot be used raises a subclass of `UsageProblem` whose message
is the whole story in one line (it names the file, the entry or the flag). `rdsaudit.cli`
catches the base once and prints `rdsaudit: error: <message>`; nothing already written is
lost, because reports are published by rename (rdsaudit.outputs).

Failures of AWS calls are not exceptions of this kind: they are data (`CollectionError`)
that reaches every report and the exit code.
"""

from __future__ import annotations


class UsageProblem(Exception):
    """Bad input the user can fix: one line on stderr, exit 2."""
