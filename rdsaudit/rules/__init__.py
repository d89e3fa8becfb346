"""Rules: pure functions over an Inventory. No boto3 here."""

from rdsaudit.rules import catalogue as _catalogue  # noqa: F401  (registers the rules)
from rdsaudit.rules.context import Context, KeyView
from rdsaudit.rules.registry import RULES, Rule, Verdict

__all__ = ["RULES", "Context", "KeyView", "Rule", "Verdict"]
