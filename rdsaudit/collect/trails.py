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
    advanced = answer.get("AdvancedEventSelectors")
    if isinstance(advanced, list) and advanced:
        reasons = []
        for selector in advanced:
            ok, why = _advanced(selector)
            if ok:
                return True, why
            reasons.append(why)
        return False, "; ".join(reasons) or "no advanced selector takes management events"
    basic = answer.get("EventSelectors")
    if isinstance(basic, list) and basic:
        reasons = []
        for selector in basic:
            ok, why = _basic(selector)
            if ok:
                return True, why
            reasons.append(why)
        return False, "; ".join(reasons)
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
        negative = (_values(source, "NotEquals") + _values(source, "NotStartsWith")
                    + _values(source, "NotEndsWith"))
        if any(KMS_SOURCE.startswith(v) or KMS_SOURCE.endswith(v) or v == KMS_SOURCE
               for v in negative):
            return False, f"{KMS_SOURCE} is excluded from management events"
    return True, f"management events including {KMS_SOURCE} (advanced selector)"
