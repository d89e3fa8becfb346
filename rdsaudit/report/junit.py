"""The JUnit XML report: findings as test results, so a CI system shows them natively.

One testsuite per rule, one testcase per failing or waived rule x resource (`classname` =
rule id, `name` = resource ARN): `<failure>` for fail, `<skipped>` for waived; the passes are
one passing testcase per rule ("N resources pass"), or one per resource with --evidence
full. Collection errors are testcases with `<error>` in a suite of their own, so an
incomplete scan is never a green build.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from rdsaudit.rules import RULES

ERRORS_SUITE = "collection-errors"
# Characters XML 1.0 cannot carry at all, even escaped; AWS text could still contain them.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render_junit(doc: Mapping[str, Any]) -> str:
    return "".join(iter_junit(doc))


def iter_junit(doc: Mapping[str, Any]) -> Iterator[str]:
    """The JUnit XML a testsuite at a time, for writing straight to the file: the totals
    the root carries are counted first, then each suite is built, written and dropped."""
    findings: Sequence[Mapping[str, Any]] = doc.get("findings") or []
    errors: Sequence[Mapping[str, Any]] = doc.get("errors") or []
    scan: Mapping[str, Any] = doc.get("scan") or {}
    by_rule: dict[str, list[Mapping[str, Any]]] = {}
    for f in findings:
        by_rule.setdefault(str(f.get("rule_id")), []).append(f)
    passing: dict[str, int] = {}
    if scan.get("evidence") != "full":
        # The passes are evidence on each resource (contract v2, in the JSON report): here
        # one passing testcase per rule says how many resources pass it. 600,000 passing
        # cases of a large estate would be most of a CI system's test view and of the file.
        for r in doc.get("resources") or []:
            for rule_id in r.get("passes") or []:
                passing[str(rule_id)] = passing.get(str(rule_id), 0) + 1
        for rule_id in passing:
            by_rule.setdefault(rule_id, [])
    # Catalogue order first (stable across runs), then any rule the catalogue lacks.
    rule_ids = [r for r in RULES if r in by_rule] + sorted(set(by_rule) - set(RULES))

    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for rule_id in rule_ids:
        for name, n in _counts(by_rule[rule_id], passing.get(rule_id, 0)).items():
            totals[name] += n
    totals["tests"] += len(errors)
    totals["errors"] += len(errors)
    root = ET.Element("testsuites",
                      {"name": "rdsaudit", **{k: str(n) for k, n in totals.items()}, "time": "0"})
    head = ET.tostring(root, encoding="unicode", xml_declaration=True)
    yield head.removesuffix(" />") + ">\n"
    for rule_id in rule_ids:
        suite = _suite(rule_id, scan)
        for f in by_rule[rule_id]:
            _finding_case(suite, rule_id, f)
        if passing.get(rule_id):
            n = passing[rule_id]
            ET.SubElement(suite, "testcase", classname=_clean(rule_id),
                          name=f"{n} resource{'s' if n != 1 else ''} pass", time="0")
        yield _written(suite, _counts(by_rule[rule_id], passing.get(rule_id, 0)))
    if errors:
        suite = _suite(ERRORS_SUITE, scan)
        for e in errors:
            _error_case(suite, e)
        yield _written(suite, {"tests": len(errors), "failures": 0, "errors": len(errors),
                               "skipped": 0})
    yield "</testsuites>\n"


def _counts(findings: Sequence[Mapping[str, Any]], passing: int) -> dict[str, int]:
    return {
        "tests": len(findings) + (1 if passing else 0),
        "failures": sum(1 for f in findings if f.get("status") == "fail"),
        "errors": 0,
        "skipped": sum(1 for f in findings if f.get("status") == "waived"),
    }


def _written(suite: ET.Element, counts: Mapping[str, int]) -> str:
    for name, n in counts.items():
        suite.set(name, str(n))
    suite.set("time", "0")
    ET.indent(suite, level=1)
    text = ET.tostring(suite, encoding="unicode")
    # ElementTree writes a CR in element text raw, and every XML parser reads it back as LF;
    # as a character reference it survives (attributes already get &#13;).
    return "  " + text.replace("\r", "&#13;") + "\n"


def _suite(name: str, scan: Mapping[str, Any]) -> ET.Element:
    suite = ET.Element("testsuite", name=name)
    if scan.get("started_at"):
        suite.set("timestamp", _clean(scan["started_at"]))
    return suite


def _finding_case(suite: ET.Element, rule_id: str, f: Mapping[str, Any]) -> None:
    resource = f.get("resource") or {}
    case = ET.SubElement(suite, "testcase", classname=_clean(rule_id),
                         name=_clean(resource.get("arn") or resource.get("id") or "?"),
                         time="0")
    message = _clean(f.get("message") or "")
    status = f.get("status")
    if status == "fail":
        failure = ET.SubElement(case, "failure", message=message,
                                type=_clean(f.get("severity") or ""))
        failure.text = _clean(_failure_text(f))
    elif status == "waived":
        waiver = f.get("waiver") or {}
        reason = "waived"
        if waiver.get("reason"):
            reason += f": {waiver['reason']}"
        details = [f"{k} {waiver[k]}" for k in ("owner", "expires") if waiver.get(k)]
        if details:
            reason += f" ({', '.join(details)})"
        ET.SubElement(case, "skipped", message=_clean(reason))
    if status != "fail" and message:
        ET.SubElement(case, "system-out").text = message


def _failure_text(f: Mapping[str, Any]) -> str:
    lines = [str(f.get("message") or "")]
    remediation = f.get("remediation") or {}
    if remediation.get("summary"):
        lines += ["", f"Remediation: {remediation['summary']}"]
    for i, step in enumerate(remediation.get("steps") or [], 1):
        lines.append(f"  {i}. {step.get('title', '')}" + (" (manual)" if step.get("manual")
                                                          else ""))
        if step.get("command"):
            lines.append(f"     {step['command']}")
    return "\n".join(lines)


def _error_case(suite: ET.Element, e: Mapping[str, Any]) -> None:
    call = f"{e.get('service')}:{e.get('operation')}"
    case = ET.SubElement(suite, "testcase", classname=ERRORS_SUITE,
                         name=_clean(f"{e.get('account_id')}/{e.get('region')} {call}"),
                         time="0")
    error = ET.SubElement(case, "error", message=_clean(str(e.get("message") or "")),
                          type=_clean(str(e.get("code") or "")))
    error.text = _clean(f"{call} failed in account {e.get('account_id')}, region "
                        f"{e.get('region')}: {e.get('code')}: {e.get('message')}. "
                        "The scan is incomplete: what this call would have returned is "
                        "not in the report.")


def _clean(value: Any) -> str:
    return _NOT_XML.sub("\ufffd", str(value))
