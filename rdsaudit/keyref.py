"""Turn a resource's `KmsKeyId` into the ARN of the key to look up.

RDS returns the key ARN in practice, but the API model allows a key id, an alias name or an
alias ARN, and emulators echo whatever was passed. Collect and evaluate share this one pure
function, so a saved inventory is judged exactly as the live scan was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rdsaudit.arns import Arn, is_key_id, key_arn, partition_of_region
from rdsaudit.model import EncryptionType, KeyLookup, KeyRole, KmsKey, Resource


@dataclass(frozen=True)
class KeyRef:
    """A resolved key ARN, or why there is none. `alias` is set when the alias must be known."""

    arn: str | None
    reason: str | None = None
    alias: tuple[str, str] | None = None  # (region, alias/name) still to resolve


def resolve_key(
    kms_key_id: str,
    region: str,
    account_id: str,
    aliases: Mapping[str, Mapping[str, str | None]],
) -> KeyRef:
    """Resolve `kms_key_id` as seen on a resource in `region` of `account_id`.

    `aliases` maps region -> {"alias/name": target key id} for the caller's own account
    (ListAliases cannot see other accounts); a region that is absent was not listed.
    """
    text = kms_key_id.strip()
    arn = Arn.parse(text)
    if arn is not None:
        if arn.service != "kms":
            return KeyRef(None, f"KmsKeyId {text!r} is not a KMS ARN")
        if arn.resource.startswith("key/") and is_key_id(arn.resource[4:]):
            return KeyRef(str(arn))
        if arn.resource.startswith("alias/"):
            if arn.account != account_id:
                return KeyRef(
                    None,
                    f"alias {arn.resource} belongs to account {arn.account}; "
                    "aliases of other accounts cannot be listed",
                )
            return _via_alias(arn.region, arn.account, arn.partition, arn.resource, aliases)
        return KeyRef(None, f"KmsKeyId {text!r} is not a key or alias ARN")
    if is_key_id(text):
        return KeyRef(key_arn(partition_of_region(region), region, account_id, text))
    if text.startswith("alias/"):
        return _via_alias(region, account_id, partition_of_region(region), text, aliases)
    return KeyRef(None, f"KmsKeyId {text!r} is not a key ARN, key id or alias")


def _via_alias(
    region: str,
    account_id: str,
    partition: str,
    alias: str,
    aliases: Mapping[str, Mapping[str, str | None]],
) -> KeyRef:
    listed = aliases.get(region)
    if listed is None:
        return KeyRef(
            None, f"{alias} in {region} could not be resolved (aliases not listed)",
            alias=(region, alias),
        )
    if alias not in listed:
        return KeyRef(None, f"{alias} does not exist in {region}")
    target = listed[alias]
    if target is None:
        return KeyRef(None, f"{alias} in {region} points at no key")
    return KeyRef(key_arn(partition, region, account_id, target))


def key_dependencies(resource: Resource) -> tuple[tuple[KeyRole, str], ...]:
    """Every (role, KmsKeyId) a resource depends on, as AWS named them.

    The storage key counts only for KMS encryption (an AWS owned key, sse-rds, is not in
    the account); the other roles whenever AWS named a key for them.
    """
    out: list[tuple[KeyRole, str]] = []
    if (resource.encrypted and resource.encryption_type is not EncryptionType.SSE_RDS
            and resource.kms_key_id):
        out.append((KeyRole.STORAGE, resource.kms_key_id))
    for role, key_id in (
        (KeyRole.PERFORMANCE_INSIGHTS, resource.performance_insights_kms_key_id),
        (KeyRole.MASTER_USER_SECRET, resource.master_user_secret_kms_key_id),
        (KeyRole.ACTIVITY_STREAM, resource.activity_stream_kms_key_id),
    ):
        if key_id:
            out.append((role, key_id))
    return tuple(out)


# Keys whose automatic rotation AWS does not support (aws-facts §5, GetKeyRotationStatus:
# "You cannot enable automatic rotation of ... KMS keys with imported key material, or KMS
# keys in a custom key store"): rotation is not applicable, and this is why.
# Key states in which RDS cannot use the key (docs/aws-facts.md §5, the key-state table).
UNUSABLE_KEY_STATES = frozenset(
    {"Disabled", "PendingDeletion", "PendingImport", "PendingReplicaDeletion", "Unavailable"}
)
# Every KeyState and KeyManager the KMS model knows (botocore KeyState / KeyManagerType
# enums, aws-facts §5). Anything else is a value rdsaudit cannot judge: key-unverifiable.
KNOWN_KEY_STATES = UNUSABLE_KEY_STATES | {"Creating", "Enabled", "Updating"}
KNOWN_KEY_MANAGERS = frozenset({"AWS", "CUSTOMER"})

def key_health(key: KmsKey) -> str:
    """`unusable` (gone, or a state in which RDS cannot use it), `unverifiable` (not
    described, or a state or manager rdsaudit does not know), else `usable`. The report's
    key entries carry it (`keys[].health`), so the HTML shows the judgement, not its own."""
    if key.lookup is KeyLookup.NOT_FOUND or key.key_state in UNUSABLE_KEY_STATES:
        return "unusable"
    if key.lookup is not KeyLookup.OK or key.key_state not in KNOWN_KEY_STATES \
            or key.key_manager not in KNOWN_KEY_MANAGERS:
        return "unverifiable"
    return "usable"


NO_ROTATION_ORIGINS = {
    "EXTERNAL": "imported key material (Origin EXTERNAL) cannot rotate automatically; "
                "rotate it by importing new material or moving to a new key",
    "AWS_CLOUDHSM": "keys in an AWS CloudHSM key store (Origin AWS_CLOUDHSM) cannot rotate "
                    "automatically; rotate by moving to a new key",
    "EXTERNAL_KEY_STORE": "keys in an external key store (Origin EXTERNAL_KEY_STORE) cannot "
                          "rotate automatically; rotation is managed in the external key "
                          "manager",
}
CUSTOM_KEY_STORE_ORIGINS = frozenset({"AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"})


def rotation_not_applicable(key: KmsKey) -> str | None:
    """Why automatic rotation does not apply to this key, or None if it does."""
    if key.origin in NO_ROTATION_ORIGINS:
        return NO_ROTATION_ORIGINS[key.origin]
    if is_replica_key(key):
        return (f"multi-Region replica key: rotation is set and judged on its primary key "
                f"{key.primary_key_arn}")
    return None


def is_replica_key(key: KmsKey) -> bool:
    return key.primary_key_arn is not None and key.primary_key_arn != key.arn


# Engines that can use Transparent Data Encryption (the seed: Oracle and SQL Server), and
# the option names that turn it on (RDS User Guide: the TDE option of an option group).
TDE_ENGINES = ("oracle-", "sqlserver-", "custom-oracle-", "custom-sqlserver-")
TDE_OPTIONS = frozenset({"TDE", "TDE_HSM", "TDE_SQLServer", "TRANSPARENT_DATA_ENCRYPTION"})
