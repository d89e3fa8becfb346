"""The HTML report: one self-contained page an auditor can open offline from `file://`.

Everything the page needs is inline: CSS, JS, the charts (SVG drawn by the template) and
the findings (JSON in a `<script type="application/json">`, which the page's JS turns into
table rows with `textContent`, never `innerHTML`). Every name, tag, description and error
message in the document is attacker-controlled, so:

* the template autoescapes everything it prints;
* the embedded JSON has `<`, `>`, `&` and `'` escaped as `\\u003c`… (`tojson`), so a value
  such as `</script>` cannot end the data block;
* a Content-Security-Policy allows exactly the page's own script and style (by hash), so
  even markup that slipped through could not run a script or an inline handler.

With 20,000 findings the page stays usable because the rows are built in JS a page at a
time from compact, de-duplicated data (resources and keys are stored once), and filtering
is one linear pass over that data.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup

SEVERITIES = ("critical", "high", "medium", "low", "info")
STATUSES = ("fail", "waived", "pass")
# Key states in which RDS cannot use the key (DESIGN.md, key-unusable); "NotFound" is how a
# finding's key summary says the key no longer exists.
UNUSABLE_KEY_STATES = frozenset({"Disabled", "PendingDeletion", "PendingImport",
                                 "PendingReplicaDeletion", "Unavailable", "NotFound"})
MANAGER_LABELS = {"CUSTOMER": "Customer managed", "AWS": "AWS managed",
                  "AWS_OWNED": "AWS owned"}
CHART_TOP = 15  # bars per chart; the rest are summed into one "other" bar


def render_html(doc: Mapping[str, Any]) -> str:
    env = _environment()
    script = env.get_template("report.js.j2").render()
    style = env.get_template("report.css.j2").render()
    page = _page(doc)
    return env.get_template("report.html.j2").render(
        **page,
        script=Markup(script),  # noqa: S704 - our own static template text, no data in it
        style=Markup(style),  # noqa: S704 - idem
        csp=_csp(script, style),
    )


@cache
def _environment() -> jinja2.Environment:
    # Templates are package resources of rdsaudit.templates (templates/ in the source tree),
    # read through importlib.resources so an installed wheel or a zip finds them too.
    root = importlib.resources.files("rdsaudit.templates")

    def load(name: str) -> str:
        return root.joinpath(name).read_text(encoding="utf-8")

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(load),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Compact data: the embedded findings are most of the file's size.
    env.policies["json.dumps_kwargs"] = {"separators": (",", ":"), "ensure_ascii": False}
    return env


def _csp(script: str, style: str) -> str:
    def digest(text: str) -> str:
        return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()

    return (f"default-src 'none'; script-src '{digest(script)}'; "
            f"style-src '{digest(style)}'; img-src data:; base-uri 'none'; form-action 'none'")


def _page(doc: Mapping[str, Any]) -> dict[str, Any]:
    scan: Mapping[str, Any] = doc.get("scan") or {}
    summary: Mapping[str, Any] = doc.get("summary") or {}
    findings: Sequence[Mapping[str, Any]] = doc.get("findings") or []
    errors: Sequence[Mapping[str, Any]] = doc.get("errors") or []
    failing = [f for f in findings if f.get("status") == "fail"]
    statuses = Counter(str(f.get("status")) for f in findings)
    severities = Counter(str(f.get("severity")) for f in failing)
    keys = _key_rows(doc.get("keys") or [], findings, _parse_time(scan.get("finished_at")))
    data = _table_data(findings, keys)
    regions = {str(r) for r in scan.get("regions") or []}
    regions.update(str(_resource(f).get("region")) for f in findings)
    accounts = {str(a) for a in scan.get("accounts") or []}
    accounts.update(str(_resource(f).get("account_id")) for f in findings)
    return {
        "tool": doc.get("tool") or {},
        "scan": scan,
        "summary": summary,
        "complete": bool(summary.get("complete", not errors)) and not errors,
        "errors": errors,
        "skipped_regions": scan.get("skipped_regions") or [],
        "api_calls": sum(int(v) for v in (scan.get("api_calls") or {}).values()),
        "duration": _duration(scan.get("started_at"), scan.get("finished_at")),
        "severity_counts": [(s, severities.get(s, 0)) for s in SEVERITIES],
        "status_counts": [(s, statuses.get(s, 0)) for s in STATUSES],
        "total_findings": len(findings),
        "rule_chart": _chart(failing, lambda f: str(f.get("rule_id"))),
        "region_chart": _chart(failing, lambda f: str(_resource(f).get("region"))),
        "account_chart": _chart(failing, lambda f: str(_resource(f).get("account_id")))
        if len(accounts) > 1 else None,
        "keys": keys,
        "data": data,
        "filter_rules": sorted(data["rules"].items()),
        "filter_regions": sorted(regions),
        "filter_accounts": sorted(accounts),
    }


def _resource(finding: Mapping[str, Any]) -> Mapping[str, Any]:
    return finding.get("resource") or {}


def _table_data(findings: Sequence[Mapping[str, Any]],
                keys: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The findings as the page's JS reads them: rows of arrays, resources and keys interned.

    A resource has one row per rule that judged it, so storing it once (with its tags) and
    referring to it by index keeps 20,000 findings to a few megabytes.
    """
    resources: dict[tuple[Any, ...], int] = {}
    key_refs: dict[tuple[Any, ...], int] = {}
    rules: dict[str, str] = {}
    rows = []
    for f in findings:
        r = _resource(f)
        tags = f.get("tags") or {}
        res = (r.get("arn"), r.get("type"), r.get("id"), r.get("region"), r.get("account_id"),
               tuple((str(k), str(v)) for k, v in tags.items()))
        res_index = resources.setdefault(res, len(resources))
        key = f.get("kms_key")
        key_index = None
        if key:
            ref = (key.get("arn"), key.get("state"), key.get("manager"))
            key_index = key_refs.setdefault(ref, len(key_refs))
        rule_id = str(f.get("rule_id"))
        rules.setdefault(rule_id, str(f.get("title") or rule_id))
        rows.append([rule_id, f.get("severity"), f.get("status"), res_index, f.get("message"),
                     key_index, f.get("remediation"), f.get("waiver")])
    return {
        "columns": ["rule_id", "severity", "status", "resource", "message", "kms_key",
                    "remediation", "waiver"],
        "findings": rows,
        "resources": [[*res[:5], [list(t) for t in res[5]]] for res in resources],
        "kms_keys": list(key_refs),
        "rules": rules,
        # Key ARN (or AWS_OWNED, the SSE-RDS row) -> id of its row in the key view.
        "key_anchors": {k["arn"] or "AWS_OWNED": k["anchor"] for k in keys},
    }


def _chart(failing: Sequence[Mapping[str, Any]], label_of: Any) -> dict[str, Any]:
    """Horizontal bars, one per label, stacked by severity; geometry for an SVG viewBox."""
    by_label: dict[str, Counter[str]] = {}
    for f in failing:
        by_label.setdefault(label_of(f), Counter())[str(f.get("severity"))] += 1
    ordered = sorted(by_label.items(), key=lambda item: (-item[1].total(), item[0]))
    if len(ordered) > CHART_TOP:
        rest: Counter[str] = Counter()
        for _, counts in ordered[CHART_TOP - 1:]:
            rest.update(counts)
        other = f"{len(ordered) - CHART_TOP + 1} others"
        ordered = [*ordered[:CHART_TOP - 1], (other, rest)]
    label_w, bar_w, row_h = 250, 360, 26
    peak = max((c.total() for _, c in ordered), default=0)
    rows = []
    for i, (label, counts) in enumerate(ordered):
        x = float(label_w)
        segments = []
        for sev in SEVERITIES:
            n = counts.get(sev, 0)
            if n:
                w = max(2.0, bar_w * n / peak)
                segments.append({"severity": sev, "x": round(x, 1), "w": round(w, 1),
                                 "count": n})
                x += w
        rows.append({
            "label": label,
            "short": label if len(label) <= 34 else label[:33] + "…",
            "filterable": i < CHART_TOP - 1 or len(by_label) <= CHART_TOP,
            "y": i * row_h,
            "total": counts.total(),
            "end": round(x, 1),
            "segments": segments,
        })
    return {"rows": rows, "width": label_w + bar_w + 60, "height": max(1, len(rows)) * row_h}


def _key_rows(keys: Sequence[Mapping[str, Any]], findings: Sequence[Mapping[str, Any]],
              now: datetime | None) -> list[dict[str, Any]]:
    """Every key in use, unusable ones first, plus one row for AWS owned keys (SSE-RDS).

    AWS owned keys live outside the account and are never described, so that row is built
    from the findings whose key summary says AWS_OWNED.
    """
    rows: list[dict[str, Any]] = []
    for k in keys:
        state = k.get("key_state")
        if k.get("lookup") == "not-found":
            state = "NotFound"
        deletion = _parse_time(k.get("deletion_date"))
        days_left = None
        if deletion is not None and now is not None:
            seconds = (deletion - now).total_seconds()
            days_left = max(0, int(-(-seconds // 86400)))  # whole days, rounded up
        danger = state in UNUSABLE_KEY_STATES
        rows.append({
            "arn": k.get("arn"),
            "aliases": list(k.get("aliases") or []),
            "account_id": k.get("account_id"),
            "region": k.get("region"),
            "lookup": k.get("lookup"),
            "state": state,
            "level": "danger" if danger else ("warn" if k.get("lookup") != "ok" else "ok"),
            "manager": MANAGER_LABELS.get(str(k.get("key_manager")), k.get("key_manager")),
            "rotation": _rotation_text(k),
            "rotation_level": {"enabled": "ok", "disabled": "bad"}.get(_rotation_text(k), "na"),
            "origin": k.get("origin"),
            "description": k.get("description"),
            "deletion_date": k.get("deletion_date"),
            "days_left": days_left,
            "multi_region": k.get("multi_region"),
            "note": k.get("note"),
            "resources": list(k.get("resources") or []),
        })
    owned = sorted({str(_resource(f).get("arn")) for f in findings
                    if (f.get("kms_key") or {}).get("manager") == "AWS_OWNED"})
    if owned:
        rows.append({
            "arn": None, "aliases": [], "account_id": "AWS", "region": None, "lookup": None,
            "state": None, "level": "ok", "manager": MANAGER_LABELS["AWS_OWNED"],
            "rotation": "managed by AWS", "rotation_level": "na", "origin": None,
            "description": "AWS owned key (SSE-RDS): outside the account, cannot be "
                           "described, audited or controlled",
            "deletion_date": None, "days_left": None, "multi_region": None, "note": None,
            "resources": owned,
        })
    # Unusable keys first, and of those the ones about to be deleted, soonest first.
    order = {"danger": 0, "warn": 1, "ok": 2}
    rows.sort(key=lambda r: (order[r["level"]], r["days_left"] is None, r["days_left"] or 0,
                             str(r["account_id"]), str(r["region"]), str(r["arn"])))
    for i, row in enumerate(rows):
        row["anchor"] = f"key-{i + 1}"
    return rows


def _rotation_text(key: Mapping[str, Any]) -> str:
    rotation = key.get("rotation")
    if rotation == "ok":
        return "enabled" if key.get("rotation_enabled") else "disabled"
    if rotation == "not-applicable":
        return "not applicable"
    if rotation == "not-checked":
        return "rotated by AWS" if key.get("key_manager") == "AWS" else "not checked"
    return f"unknown ({rotation})" if rotation else "unknown"


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _duration(start: Any, end: Any) -> str | None:
    a, b = _parse_time(start), _parse_time(end)
    if a is None or b is None:
        return None
    seconds = int((b - a).total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60} s"
