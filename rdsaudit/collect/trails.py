"""Whether a CloudTrail trail audits the use of KMS keys (the seed: "AWS KMS supports
CloudTrail, so you can audit key usage").

RDS uses a customer key through KMS calls (Decrypt, GenerateDataKey...), which CloudTrail
records as *read* management events of `kms.amazonaws.com` in the key's region. A trail
audits them when it is logging, covers that region (its home region, or all regions), and
its event selectors take management events that are read-only or all, without excluding
`kms.amazonaws.com`. Basic selectors: `ExcludeManagementEventSources` can name it;
`ReadWriteType` WriteOnly drops reads. Advanced selectors: a field selector on
`eventSource` or `readOnly` can drop them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

KMS_SOURCE = "kms.amazonaws.com"


def kms_reads_logged(answer: Mapping[str, Any]) -> tuple[bool, str]:
    """(logged, why) for a GetEventSelectors answer."""
    # A trail has advanced selectors or basic ones, never both (CloudTrail replaces one set
    # with the other); any one selector that logs KMS read events is enough.
    for key, judge, none in (
            ("AdvancedEventSelectors", _advanced, "no advanced selector takes management events"),
            ("EventSelectors", _basic, "")):
        selectors = answer.get(key)
        if isinstance(selectors, list) and selectors:
            reasons = []
            for selector in selectors:
                ok, why = judge(selector)
                if ok:
                    return True, why
                reasons.append(why)
            return False, "; ".join(reasons) or none
    return False, "the trail has no event selectors: it logs no management events"


def _basic(selector: Any) -> tuple[bool, str]:
    if not isinstance(selector, Mapping):
        return False, "malformed event selector"
    if selector.get("IncludeManagementEvents") is False:
        return False, "management events are not included"
    kind = selector.get("ReadWriteType", "All")
    if kind == "WriteOnly":
        return False, "only WriteOnly management events are logged (Decrypt is a read event)"
    excluded = selector.get("ExcludeManagementEventSources") or ()
    if KMS_SOURCE in excluded:
        return False, f"{KMS_SOURCE} is excluded from management events"
    return True, f"management events ({kind}) including {KMS_SOURCE}"


def _values(field: Mapping[str, Any], name: str) -> list[str]:
    value = field.get(name)
    return [str(v) for v in value] if isinstance(value, list) else []


def _advanced(selector: Any) -> tuple[bool, str]:
    if not isinstance(selector, Mapping):
        return False, "malformed advanced event selector"
    fields = [f for f in selector.get("FieldSelectors") or () if isinstance(f, Mapping)]
    by_name = {str(f.get("Field")): f for f in fields}
    category = by_name.get("eventCategory")
    if category is None or "Management" not in _values(category, "Equals"):
        return False, "an advanced selector that does not take management events"
    read_only = by_name.get("readOnly")
    if read_only is not None and _values(read_only, "Equals") == ["false"]:
        return False, "only write management events are logged (Decrypt is a read event)"
    source = by_name.get("eventSource")
    if source is not None:
        equals = _values(source, "Equals")
        if equals and KMS_SOURCE not in equals:
            return False, f"management events only from {', '.join(equals)}"
        starts = _values(source, "StartsWith")
        if starts and not any(KMS_SOURCE.startswith(v) for v in starts):
            return False, f"management events only from sources starting {', '.join(starts)}"
        # Each operator excludes by its own test: NotEquals the exact name, NotStartsWith a
        # prefix, NotEndsWith a suffix of it.
        if (KMS_SOURCE in _values(source, "NotEquals")
                or any(KMS_SOURCE.startswith(v) for v in _values(source, "NotStartsWith"))
                or any(KMS_SOURCE.endswith(v) for v in _values(source, "NotEndsWith"))):
            return False, f"{KMS_SOURCE} is excluded from management events"
    return True, f"management events including {KMS_SOURCE} (advanced selector)"
