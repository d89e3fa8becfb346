"""Each rule's AWS documentation page: the readable formats link a rule to it.

A rule the table does not know (added since) links the RDS encryption chapter, which every
rule of the catalogue comes from (DESIGN.md, rule catalogue).
"""

from __future__ import annotations

_RDS = "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/"
_KMS = "https://docs.aws.amazon.com/kms/latest/developerguide/"
ENCRYPTION_CHAPTER = _RDS + "Overview.Encryption.html"

RULE_DOCS: dict[str, str] = {
    "instance-unencrypted": ENCRYPTION_CHAPTER,
    "cluster-unencrypted": ENCRYPTION_CHAPTER,
    "snapshot-unencrypted": _RDS + "USER_CopySnapshot.html",
    "cluster-snapshot-unencrypted": _RDS + "USER_CopySnapshot.html",
    "automated-backup-unencrypted": _RDS + "USER_WorkingWithAutomatedBackups.html",
    "snapshot-public": _RDS + "USER_ShareSnapshot.html",
    "key-unusable": _KMS + "key-state.html",
    "encryption-credentials-inaccessible": _RDS + "Overview.Encryption.Keys.html",
    "key-unverifiable": _KMS + "control-access.html",
    "encrypted-without-backups": _RDS + "USER_WorkingWithAutomatedBackups.html",
    "replica-encryption-mismatch": _RDS + "USER_ReadRepl.html",
    "replica-key-mismatch": _RDS + "USER_ReadRepl.html",
    "key-region-mismatch": _KMS + "multi-region-keys-overview.html",
    "aws-managed-key": _KMS + "concepts.html",
    "aws-owned-key": _KMS + "concepts.html",
    "key-rotation-disabled": _KMS + "rotate-keys.html",
    "cross-account-key": _KMS + "key-policy-modifying-external-accounts.html",
    "key-material-expiring": _KMS + "importing-keys.html",
    "key-usage-not-audited": _KMS + "logging-using-cloudtrail.html",
}


def rule_doc(rule_id: str) -> str:
    return RULE_DOCS.get(rule_id, ENCRYPTION_CHAPTER)
