"""CloudTrail event selectors: does a trail log the KMS read events (Decrypt) that show a
key's use? The GetEventSelectors shapes of the botocore model, basic and advanced."""

from __future__ import annotations

from typing import Any

import pytest

from rdsaudit.collect.trails import kms_reads_logged


def adv(*fields: tuple[str, str, list[str]]) -> dict[str, Any]:
    return {"AdvancedEventSelectors": [{"Name": "s", "FieldSelectors": [
        {"Field": name, op: values} for name, op, values in fields]}]}


MGMT = ("eventCategory", "Equals", ["Management"])
CASES: list[tuple[str, dict[str, Any], bool, str]] = [
    ("basic, all management events", {"EventSelectors": [
        {"ReadWriteType": "All", "IncludeManagementEvents": True}]}, True, "including"),
    ("basic, ReadOnly", {"EventSelectors": [{"ReadWriteType": "ReadOnly"}]}, True, ""),
    ("basic, WriteOnly", {"EventSelectors": [{"ReadWriteType": "WriteOnly"}]}, False,
     "WriteOnly"),
    ("basic, no management events", {"EventSelectors": [
        {"ReadWriteType": "All", "IncludeManagementEvents": False}]}, False, "not included"),
    ("basic, KMS excluded", {"EventSelectors": [{"ReadWriteType": "All",
                                                 "ExcludeManagementEventSources": [
                                                     "kms.amazonaws.com"]}]}, False,
     "excluded"),
    ("basic, one of two selectors logs", {"EventSelectors": [
        {"ReadWriteType": "WriteOnly"}, {"ReadWriteType": "All"}]}, True, ""),
    ("no selectors", {"EventSelectors": []}, False, "no event selectors"),
    ("advanced, management", adv(MGMT), True, "advanced"),
    ("advanced, data events only", adv(("eventCategory", "Equals", ["Data"])), False,
     "does not take management"),
    ("advanced, write only", adv(MGMT, ("readOnly", "Equals", ["false"])), False,
     "only write"),
    ("advanced, read only", adv(MGMT, ("readOnly", "Equals", ["true"])), True, ""),
    ("advanced, only from RDS", adv(MGMT, ("eventSource", "Equals", ["rds.amazonaws.com"])),
     False, "only from"),
    ("advanced, KMS named", adv(MGMT, ("eventSource", "Equals", ["kms.amazonaws.com"])),
     True, ""),
    ("advanced, NotEquals KMS", adv(MGMT, ("eventSource", "NotEquals", ["kms.amazonaws.com"])),
     False, "excluded"),
    ("advanced, NotEquals a prefix of KMS is not KMS",
     adv(MGMT, ("eventSource", "NotEquals", ["kms"])), True, ""),
    ("advanced, NotStartsWith kms", adv(MGMT, ("eventSource", "NotStartsWith", ["kms."])),
     False, "excluded"),
    ("advanced, NotEndsWith the domain",
     adv(MGMT, ("eventSource", "NotEndsWith", [".amazonaws.com"])), False, "excluded"),
    ("advanced, NotEndsWith another", adv(MGMT, ("eventSource", "NotEndsWith", ["rds"])),
     True, ""),
    ("advanced, StartsWith another", adv(MGMT, ("eventSource", "StartsWith", ["rds"])),
     False, "only from"),
    ("advanced, StartsWith kms", adv(MGMT, ("eventSource", "StartsWith", ["kms"])), True, ""),
    ("malformed selector", {"EventSelectors": ["x"]}, False, "malformed"),
]


@pytest.mark.parametrize(("answer", "logged", "says"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_which_selectors_log_kms_reads(answer: dict[str, Any], logged: bool,
                                       says: str) -> None:
    ok, why = kms_reads_logged(answer)
    assert ok is logged, why
    assert says in why
