"""What the user wants judged, and how strictly: defaults, then the TOML config, then flags."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rdsaudit.errors import UsageProblem
from rdsaudit.model import KeyProtection, Severity
from rdsaudit.waivers import WaiverProblem, WaiverRule, parse_waivers


class ConfigProblem(UsageProblem, ValueError):
    """A config file we cannot use; the message names the file and the entry."""


@dataclass(frozen=True)
class KeyProtectionRule:
    """A `[[key_protection]]` entry: the minimum key protection for one account."""

    account: str
    minimum: KeyProtection


@dataclass(frozen=True)
class Policy:
    require_customer_managed_key: bool = False
    min_backup_retention_days: int = 1
    # key-material-expiring: imported key material whose ValidTo is this close fails.
    key_material_expiry_days: int = 30
    regions: tuple[str, ...] = ()
    fail_on: Severity = Severity.LOW
    # Region -> key ARN used as the encryption target in remediation plans.
    target_keys: Mapping[str, str] = field(default_factory=dict)
    waivers: tuple[WaiverRule, ...] = ()
    # The key-protection ladder: the least a storage key must be (aws-owned < aws-managed <
    # customer < customer-external-store); `require_customer_managed_key` means customer.
    minimum_key_protection: KeyProtection = KeyProtection.AWS_OWNED
    key_protection: tuple[KeyProtectionRule, ...] = ()

    def minimum_for(self, account_id: str) -> KeyProtection:
        """The minimum for an account: its `[[key_protection]]` entries if any match (the
        strictest wins), else `minimum_key_protection`; `require_customer_managed_key`
        never lets it fall below customer."""
        matches = [e.minimum for e in self.key_protection if e.account == account_id]
        minimum = max(matches) if matches else self.minimum_key_protection
        if self.require_customer_managed_key:
            minimum = max(minimum, KeyProtection.CUSTOMER)
        return minimum


_KNOWN = {"require_customer_managed_key", "min_backup_retention_days", "regions", "fail_on",
          "target_keys", "waivers", "key_material_expiry_days", "minimum_key_protection",
          "key_protection"}


def _protection(value: Any, source: str, where: str) -> KeyProtection:
    try:
        return KeyProtection.parse(value if isinstance(value, str) else "?")
    except ValueError as exc:
        raise ConfigProblem(f"{source}: {where}: {exc}") from None


def load_policy(path: Path) -> Policy:
    from rdsaudit.userfile import UserFileProblem, read_user_file

    try:
        raw = tomllib.loads(read_user_file(path, "config", 16 * 1024**2))
    except UserFileProblem as exc:
        raise ConfigProblem(str(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigProblem(f"{path}: invalid TOML: {exc}") from None
    return policy_from_mapping(raw, str(path))


def policy_from_mapping(raw: Mapping[str, Any], source: str) -> Policy:
    unknown = sorted(set(raw) - _KNOWN)
    if unknown:
        raise ConfigProblem(f"{source}: unknown setting(s) {', '.join(unknown)} "
                            f"(known: {', '.join(sorted(_KNOWN))})")
    policy = Policy()
    values: dict[str, Any] = {}
    if "require_customer_managed_key" in raw:
        value = raw["require_customer_managed_key"]
        if not isinstance(value, bool):
            raise ConfigProblem(f"{source}: require_customer_managed_key must be true or false")
        values["require_customer_managed_key"] = value
    if "min_backup_retention_days" in raw:
        value = raw["min_backup_retention_days"]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 35:
            raise ConfigProblem(
                f"{source}: min_backup_retention_days must be a whole number from 0 to 35")
        values["min_backup_retention_days"] = value
    if "minimum_key_protection" in raw:
        values["minimum_key_protection"] = _protection(raw["minimum_key_protection"], source,
                                                       "minimum_key_protection")
    if "key_protection" in raw:
        entries = raw["key_protection"]
        if not isinstance(entries, list):
            raise ConfigProblem(f"{source}: key_protection must be a list of "
                                "[[key_protection]] tables")
        rules = []
        for n, entry in enumerate(entries, 1):
            where = f"key_protection entry {n}"
            if not isinstance(entry, Mapping) or set(entry) != {"account", "minimum"}:
                raise ConfigProblem(f"{source}: {where} must have exactly account and minimum")
            account = entry["account"]
            if not isinstance(account, str) or not (len(account) == 12 and account.isdigit()):
                raise ConfigProblem(f"{source}: {where}: account must be a 12-digit AWS "
                                    "account id in quotes")
            rules.append(KeyProtectionRule(account, _protection(entry["minimum"], source,
                                                                f"{where}: minimum")))
        values["key_protection"] = tuple(rules)
    if "key_material_expiry_days" in raw:
        value = raw["key_material_expiry_days"]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3650:
            raise ConfigProblem(
                f"{source}: key_material_expiry_days must be a whole number from 1 to 3650")
        values["key_material_expiry_days"] = value
    if "regions" in raw:
        value = raw["regions"]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigProblem(f"{source}: regions must be a list of region names")
        values["regions"] = tuple(value)
    if "fail_on" in raw:
        value = raw["fail_on"]
        try:
            values["fail_on"] = Severity.parse(value if isinstance(value, str) else "?")
        except ValueError as exc:
            raise ConfigProblem(f"{source}: fail_on: {exc}") from None
    if "target_keys" in raw:
        value = raw["target_keys"]
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) and v.startswith("arn:")
            for k, v in value.items()
        ):
            raise ConfigProblem(
                f"{source}: target_keys must map region names to KMS key ARNs")
        values["target_keys"] = dict(value)
    if "waivers" in raw:
        from rdsaudit.rules import RULES

        try:
            values["waivers"] = parse_waivers(raw["waivers"], source, list(RULES))
        except WaiverProblem as exc:
            raise ConfigProblem(str(exc)) from None
    return Policy(**{**policy.__dict__, **values})
