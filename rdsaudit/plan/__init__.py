"""Remediation: what fixes each failing finding, and the runbooks that do it (`rdsaudit plan`).

* `steps` — for each failing finding, the ordered steps that fix it, with real names
  (`evaluate` attaches them to the finding).
* `carry` — the database's own configuration, carried onto its encrypted re-creation.
* `bluegreen` — the Blue/Green strategy (`--strategy blue-green`).
* `awscli` — the AWS CLI calls a plan may contain, checked against the botocore model.
* `runbook` — a JSON report's steps rendered as shell runbooks, one per account.
* `replan` — re-plan a version 2 report without a rescan (`--target-key`, `--strategy`).
"""
