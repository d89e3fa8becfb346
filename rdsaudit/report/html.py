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

The operations views are drawn server-side like the charts: the trend of failures over the
recorded scans (`history`), the configured waivers and what became of them (`waivers`), and
the comparison with a previous report (`baseline`). Each appears only when the document
carries it. CSS and JS never name the trend, so the word appears only with the section.

Size (~750 lines): the view-model of one page (first screen, actions, findings, resources,
keys, operations views) and the compact encoding of its data (texts stored once per shape,
interned tags and rule lists); the template and its JS read exactly these names.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup

from rdsaudit.keyref import UNUSABLE_KEY_STATES
from rdsaudit.model import SEVERITY_LABELS
from rdsaudit.report.contract import POSTURES
from rdsaudit.report.ruledocs import rule_doc
from rdsaudit.timestamps import days_left as days_until
from rdsaudit.timestamps import parse_time

SEVERITIES = SEVERITY_LABELS
STATUSES = ("fail", "waived", "pass")
# Key states in which RDS cannot use the key (rdsaudit.keyref); "NotFound" is how a
# finding's key summary says the key no longer exists.
MANAGER_LABELS = {"CUSTOMER": "Customer managed", "AWS": "AWS managed",
                  "AWS_OWNED": "AWS owned"}
CHART_TOP = 15  # bars per chart; the rest are summed into one "other" bar
HISTORY_MAX = 60  # scans drawn in the trend (history.recent gives 30 by default)
WAIVER_STATES = ("expired", "stale", "active")  # worst first: the table's order
RESOLVED_MAX = 500  # resolved failures listed in the page; the JSON report has them all


def render_html(doc: Mapping[str, Any]) -> str:
    env = environment()
    # The key states the findings table marks as unusable: keyref's one set, not a copy.
    script = env.get_template("report.js.j2").render(
        unusable_states=sorted(UNUSABLE_KEY_STATES | {"NotFound"}))
    style = env.get_template("report.css.j2").render()
    page = _page(doc)
    return env.get_template("report.html.j2").render(
        **page,
        script=Markup(script),  # noqa: S704 - our own static template text, no data in it
        style=Markup(style),  # noqa: S704 - idem
        csp=_csp(script, style),
    )


@cache
def environment() -> jinja2.Environment:
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
    # Passes are counted in the summary (findings[] lists them only with --evidence full).
    statuses = Counter({str(k): int(v) for k, v in (summary.get("findings") or {}).items()}) \
        if summary.get("findings") else Counter(str(f.get("status")) for f in findings)
    severities = Counter(str(f.get("severity")) for f in failing)
    keys = _key_rows(doc.get("keys") or [], findings, parse_time(scan.get("finished_at")))
    data = _table_data(doc, findings, keys)
    regions = {str(r) for r in scan.get("regions") or []}
    regions.update(str(_resource(f).get("region")) for f in findings)
    accounts = {str(a) for a in scan.get("accounts") or []}
    accounts.update(str(_resource(f).get("account_id")) for f in findings)
    finished = parse_time(scan.get("finished_at"))
    waivers = _waiver_rows(doc.get("waivers") or [], finished)
    data["multi_account"] = len(accounts) > 1
    overview = _overview(doc)
    return {
        **overview,
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
        "total_findings": sum(1 for f in findings if f.get("status") != "pass"),
        "rule_chart": _chart(failing, lambda f: str(f.get("rule_id"))),
        "region_chart": _chart(failing, lambda f: str(_resource(f).get("region"))),
        "account_chart": _chart(failing, lambda f: str(_resource(f).get("account_id")))
        if len(accounts) > 1 else None,
        "keys": keys,
        "key_users_shown": KEY_USERS_SHOWN,
        "data": data,
        "filter_rules": sorted((r, t) for r, t in data["rules"].items()
                               if r in data["failing_rules"]),
        "filter_regions": sorted(regions),
        "filter_accounts": sorted(accounts),
        "multi_account": len(accounts) > 1,
        "trend": _trend(doc.get("history") or []),
        "waivers": waivers,
        "waiver_counts": _waiver_counts(summary.get("waivers"), waivers),
        "baseline": _baseline(doc.get("baseline")),
    }


def _resource(finding: Mapping[str, Any]) -> Mapping[str, Any]:
    return finding.get("resource") or {}


def _table_data(doc: Mapping[str, Any], findings: Sequence[Mapping[str, Any]],
                keys: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The findings and resources as the page's JS reads them: rows of arrays, interned.

    A resource is stored once as [prefix, id, tags, posture, fails, waived, arn?]: `prefix`
    indexes (ARN without the id, type, region, account), `tags` indexes `tagsets` and
    `fails` / `waived` index `rulesets` (an estate repeats a few of each), so 100,000
    resources stay a few megabytes; the full ARN is stored only when it does not end with
    the id. A finding's message and remediation (JSON text) index `texts`, where each is
    stored once with its resource's ARN, id, account and region replaced by the control
    characters of TEXT_SLOTS (the page puts them back, `expand` in report.js.j2): the
    remediations of 20,000 unencrypted snapshots differ only in those, and are a handful
    of texts. A text that holds one of those characters itself is stored as [text], as is.
    Pass evidence is per rule: the indices of the resources that pass it, each given as
    the difference from the one before. Pass findings (--evidence full) are never table
    rows: the table shows what to fix.
    """
    prefixes: dict[tuple[str, str, str, str], int] = {}
    resources: list[list[Any]] = []
    names: list[tuple[str, str, str, str]] = []  # each row's (arn, id, account, region)
    index: dict[str, int] = {}
    posture_index = {p: i for i, p in enumerate(POSTURES)}
    passes: dict[str, list[int]] = {}
    rules: dict[str, str] = {}
    tagsets: dict[str, int] = {}
    tag_rows: list[list[list[str]]] = []
    rulesets: dict[tuple[str, ...], int] = {(): 0}

    def interned_tags(tags: Mapping[str, Any]) -> int:
        pairs = [[str(k), str(v)] for k, v in tags.items()]
        key = json.dumps(pairs, ensure_ascii=False)
        found = tagsets.get(key)
        if found is None:
            found = tagsets[key] = len(tag_rows)
            tag_rows.append(pairs)
        return found

    def interned_rules(ids: Sequence[Any]) -> int:
        key = tuple(str(i) for i in ids)
        return rulesets.setdefault(key, len(rulesets))

    def add(r: Mapping[str, Any], posture: str, fails: Sequence[str],
            waived: Sequence[str]) -> int:
        arn, rid = str(r.get("arn")), str(r.get("id"))
        base = arn[:-len(rid)] if rid and arn.endswith(rid) else arn
        region, account = str(r.get("region")), str(r.get("account_id"))
        p = prefixes.setdefault((base, str(r.get("type")), region, account), len(prefixes))
        row: list[Any] = [p, rid, interned_tags(r.get("tags") or {}),
                          posture_index.get(posture, posture_index["unknown"]),
                          interned_rules(fails), interned_rules(waived)]
        if base == arn:
            row.append(arn)
        index[arn] = len(resources)
        resources.append(row)
        names.append((arn, rid, account, region))
        return index[arn]

    for r in doc.get("resources") or []:
        i = add(r, str(r.get("posture")), r.get("fails") or [], r.get("waived") or [])
        for rule_id in r.get("passes") or []:
            passes.setdefault(str(rule_id), []).append(i)
    key_refs: dict[tuple[Any, ...], int] = {}
    texts: dict[str, int] = {}
    text_rows: list[str | list[str]] = []

    def text(value: str, res_index: int) -> int:
        templated = _template(value, names[res_index])
        key = templated if isinstance(templated, str) else "\x00" + templated[0]
        found = texts.get(key)
        if found is None:
            found = texts[key] = len(text_rows)
            text_rows.append(templated)
        return found

    rows = []
    failing_rules: set[str] = set()
    for f in findings:
        rule_id = str(f.get("rule_id"))
        rules.setdefault(rule_id, str(f.get("title") or rule_id))
        if f.get("status") == "pass":
            continue
        failing_rules.add(rule_id)
        r = _resource(f)
        res_index = index.get(str(r.get("arn")))
        if res_index is None:  # a finding about a resource the document does not list
            res_index = add(r, "unknown", [], [])
        key = f.get("kms_key")
        key_index = None
        if key:
            ref = (key.get("arn"), key.get("state"), key.get("manager"))
            key_index = key_refs.setdefault(ref, len(key_refs))
        baseline = f.get("baseline")
        message = f.get("message")
        remediation = f.get("remediation")
        rows.append([rule_id, f.get("severity"), f.get("status"), res_index,
                     None if message is None else text(str(message), res_index), key_index,
                     None if not remediation else text(_compact(remediation), res_index),
                     f.get("waiver"), baseline if isinstance(baseline, str) else None])
    columns = ["rule_id", "severity", "status", "resource", "message", "kms_key",
               "remediation", "waiver", "baseline"]
    if all(row[-1] is None for row in rows):
        # No baseline: leave the column out rather than ship 20,000 nulls.
        columns.pop()
        for row in rows:
            row.pop()
    from rdsaudit.rules import RULES

    for rule_id in passes:
        rules.setdefault(rule_id, RULES[rule_id].title if rule_id in RULES else rule_id)
    return {
        "columns": columns,
        "findings": rows,
        "texts": text_rows,
        "prefixes": [list(p) for p in prefixes],
        "postures": list(POSTURES),
        "resources": resources,
        "tagsets": tag_rows,
        "rulesets": [list(ids) for ids in rulesets],
        "passes": {rule: _deltas(members) for rule, members in passes.items()},
        "kms_keys": list(key_refs),
        "rules": rules,
        "docs": {rule_id: rule_doc(rule_id) for rule_id in rules},
        "failing_rules": sorted(failing_rules),
        # Key ARN (or AWS_OWNED, the SSE-RDS row) -> id of its row in the key view.
        "key_anchors": {k["arn"] or "AWS_OWNED": k["anchor"] for k in keys},
    }


# The control characters that stand for a finding's resource in `texts`, in the order they
# are put in: the ARN first (it holds the id), then the id, the account and the region. JSON
# escapes every control character, so none can be in a JSON text; a message that holds one
# is stored as it is.
TEXT_SLOTS = ("\x02", "\x01", "\x04", "\x03")
_SLOT_CHARS = re.compile("[\x00-\x1f\"\\\\]")


def _template(value: str, name: tuple[str, str, str, str]) -> str | list[str]:
    if any(slot in value for slot in TEXT_SLOTS):
        return [value]
    for slot, part in zip(TEXT_SLOTS, name, strict=True):
        # Only a part that is written the same inside JSON text, and never an empty one.
        if part and not _SLOT_CHARS.search(part):
            value = value.replace(part, slot)
    return value


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _deltas(members: Sequence[int]) -> list[int]:
    out, last = [], 0
    for i in members:
        out.append(i - last)
        last = i
    return out


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


def _count(value: Any) -> int:
    """A count from the document: a non-negative int, 0 for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return 0
    return max(0, int(value))


def _when(text: Any) -> dict[str, str]:
    """A timestamp as the trend prints it: full, axis date, axis time."""
    moment = parse_time(text)
    if moment is None:
        raw = str(text)[:40] if text else "?"
        return {"full": raw, "short": raw, "day": raw[:10], "time": ""}
    moment = moment.astimezone(UTC)
    return {"full": moment.strftime("%Y-%m-%d %H:%M UTC"),
            "short": moment.strftime("%Y-%m-%d %H:%M"), "day": moment.strftime("%b %d"),
            "time": moment.strftime("%H:%M")}


def _nice_axis(peak: int) -> tuple[int, int]:
    """(top, step) of a y axis with about four whole-number gridlines over 0..peak."""
    if peak <= 0:
        return 4, 1
    raw = peak / 4
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(1, int(step))
    return step * math.ceil(peak / step), step


def _trend(history: Any) -> dict[str, Any] | None:
    """Failures by severity per recorded scan (oldest first): stacked bars, a line through
    their tops, and the rows of the table beside them. None without history.

    Waived failures are drawn apart, as a hatched segment above the failing ones: a failure
    that was waived is accepted, not fixed, so a drop in failures that is only new waivers
    must not read as progress (the bar keeps its height, the note says how much was waived).
    """
    if not isinstance(history, Sequence) or isinstance(history, str):
        return None
    scans = [h for h in history if isinstance(h, Mapping)][-HISTORY_MAX:]
    if not scans:
        return None
    width, height, left, right, top, bottom = 720, 240, 40, 12, 22, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = []
    for h in scans:
        by_sev = h.get("failures_by_severity")
        by_sev = by_sev if isinstance(by_sev, Mapping) else {}
        counts = {s: _count(by_sev.get(s)) for s in SEVERITIES}
        total = _count(h.get("fail")) if "fail" in h else sum(counts.values())
        totals.append((counts, max(total, sum(counts.values()))))
    waived = [_count(h.get("waived")) for h in scans]
    axis_top, step = _nice_axis(max(t + w for (_, t), w in zip(totals, waived, strict=True)))

    def y(value: float) -> float:
        return round(top + plot_h - plot_h * value / axis_top, 1)

    n = len(scans)
    slot = plot_w / n
    bar_w = min(44.0, slot * 0.62)
    label_every = math.ceil(n / 12)
    days = Counter(_when(h.get("finished_at"))["day"] for h in scans)
    points = []
    for i, (h, (counts, total)) in enumerate(zip(scans, totals, strict=True)):
        when = _when(h.get("finished_at"))
        x = left + slot * i + (slot - bar_w) / 2
        segments, base = [], 0
        for sev in SEVERITIES:  # critical at the base: the part that matters most
            n_sev = counts[sev]
            if n_sev:
                y_top, y_base = y(base + n_sev), y(base)
                segments.append({"severity": sev, "y": y_top, "h": round(y_base - y_top, 1),
                                 "count": n_sev})
                base += n_sev
        waived_seg = None
        if waived[i]:
            y_top = y(total + waived[i])
            waived_seg = {"y": y_top, "h": round(y(total) - y_top, 1), "count": waived[i]}
        complete = bool(h.get("complete", True)) and not _count(h.get("errors"))
        previous = totals[i - 1][1] if i else None
        points.append({
            "x": round(x, 1), "w": round(bar_w, 1), "cx": round(x + bar_w / 2, 1),
            "top": y(total), "total": total, "segments": segments,
            "when": when["full"], "when_short": when["short"], "day": when["day"],
            "time": when["time"] if days[when["day"]] > 1 else "",
            "label": (n - 1 - i) % label_every == 0,
            "current": i == n - 1,
            "complete": complete,
            "errors": _count(h.get("errors")),
            "critical": counts["critical"], "high": counts["high"],
            "resources": _count(h.get("resources")),
            "waived": waived[i], "waived_seg": waived_seg,
            "waived_change": None if previous is None else waived[i] - waived[i - 1],
            "change": None if previous is None else total - previous,
        })
    ticks = [{"value": v, "y": y(v)} for v in range(0, axis_top + 1, step)]
    current, first = points[-1], points[0]
    return {
        "points": points,
        "table": list(reversed(points)),  # newest first
        "ticks": ticks,
        "width": width, "height": height, "left": left, "right": width - right,
        "base": y(0), "label_y": height - bottom + 18,
        "show_values": n <= 24,
        "line": " ".join(f"{p['cx']},{p['top']}" for p in points),
        "current": current,
        "previous": points[-2] if n > 1 else None,
        "first": first,
        "incomplete": sum(not p["complete"] for p in points),
        "any_waived": any(waived),
    }


def _waiver_rows(waivers: Any, now: datetime | None) -> list[dict[str, Any]]:
    """The configured waivers, expired then stale then active, soonest expiry first."""
    if not isinstance(waivers, Sequence) or isinstance(waivers, str):
        return []
    today = now.date() if now is not None else None
    rows: list[dict[str, Any]] = []
    for w in waivers:
        if not isinstance(w, Mapping):
            continue
        state = str(w.get("state"))
        expires = w.get("expires")
        days = None
        if today is not None and isinstance(expires, str):
            try:
                days = (date.fromisoformat(expires[:10]) - today).days
            except ValueError:
                days = None
        if days is None:
            due = None
        elif days < 0:
            due = f"{-days} day{'' if days == -1 else 's'} ago"
        elif days == 0:
            due = "today"
        else:
            due = f"in {days} day{'' if days == 1 else 's'}"
        rows.append({
            "state": state if state in WAIVER_STATES else "unknown",
            "state_text": state,
            "rule": w.get("rule"), "resource": w.get("resource"),
            "reason": w.get("reason"), "owner": w.get("owner"),
            "expires": expires, "due": due,
            "soon": state == "active" and days is not None and 0 <= days <= 30,
            "matched": _count(w.get("matched")),
            "account": w.get("account"), "region": w.get("region"),
        })
    order = {s: i for i, s in enumerate(WAIVER_STATES)}
    rows.sort(key=lambda r: (order.get(str(r["state"]), -1), str(r["expires"])))
    return rows


def _waiver_counts(counts: Any, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    if isinstance(counts, Mapping):
        return {s: _count(counts.get(s)) for s in ("active", "stale", "expired")}
    seen = Counter(r["state"] for r in rows)
    return {s: seen.get(s, 0) for s in ("active", "stale", "expired")}


def _baseline(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping):
        return None
    resolved = [r for r in raw.get("resolved") or [] if isinstance(r, Mapping)]
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    resolved.sort(key=lambda r: (rank.get(str(r.get("severity")), 9), str(r.get("rule_id")),
                                 str(r.get("resource_arn"))))
    return {
        "source": str(raw.get("source") or "a previous report"),
        "new": _count(raw.get("new")),
        "unchanged": _count(raw.get("unchanged")),
        "resolved": [{**r, "severity": r.get("severity") if r.get("severity") in rank
                      else "info", "severity_text": r.get("severity")}
                     for r in resolved[:RESOLVED_MAX]],
        "resolved_total": len(resolved),
    }


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
        days_left = days_until(k.get("deletion_date"), now)
        danger = k.get("health") == "unusable"  # the document's judgement (keyref.key_health)
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
            "note": "; ".join(n for n in (k.get("note"), _last_use(k)) if n) or None,
            "resources": _users(k),
            "roles_summary": _roles_text(k),
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
            "resources": [{"arn": arn, "role": "storage"} for arn in owned],
            "roles_summary": None,
        })
    # Unusable keys first, and of those the ones about to be deleted, soonest first.
    order = {"danger": 0, "warn": 1, "ok": 2}
    rows.sort(key=lambda r: (order[r["level"]], r["days_left"] is None, r["days_left"] or 0,
                             str(r["account_id"]), str(r["region"]), str(r["arn"])))
    for i, row in enumerate(rows):
        row["anchor"] = f"key-{i + 1}"
    return rows


def _last_use(key: Mapping[str, Any]) -> str | None:
    """kms:GetKeyLastUsage, where it was allowed: the last cryptographic use."""
    if key.get("last_used_at"):
        event = (f", CloudTrail event {key['last_used_event_id']}"
                 if key.get("last_used_event_id") else "")
        return (f"last used {key['last_used_at']} ({key.get('last_used_operation') or '?'}"
                f"{event})")
    return key.get("last_usage_note") or None


def _users(key: Mapping[str, Any]) -> list[dict[str, str]]:
    """Each resource that depends on the key, with the role it uses the key in (storage,
    performance-insights, master-user-secret, activity-stream): one row per (arn, role)."""
    rows = [{"arn": str(d.get("arn")), "role": str(d.get("role") or "storage")}
            for d in key.get("roles") or () if isinstance(d, Mapping) and d.get("arn")]
    listed = {r["arn"] for r in rows}
    rows += [{"arn": str(arn), "role": "storage"} for arn in key.get("dependents") or ()
             if arn not in listed]  # a version 1 document: dependents without roles
    return rows


def _roles_text(key: Mapping[str, Any]) -> str | None:
    """How many dependents use the key in each role, when any role is not storage."""
    counts: dict[str, int] = {}
    for user in _users(key):
        counts[user["role"]] = counts.get(user["role"], 0) + 1
    if set(counts) <= {"storage"}:
        return None
    return ", ".join(f"{role} key of {n}" for role, n in sorted(counts.items()))


def _rotation_text(key: Mapping[str, Any]) -> str:
    rotation = key.get("rotation")
    if rotation == "ok":
        return "enabled" if key.get("rotation_enabled") else "disabled"
    if rotation == "not-applicable":
        return "not applicable"
    if rotation == "not-checked":
        return "rotated by AWS" if key.get("key_manager") == "AWS" else "not checked"
    return f"unknown ({rotation})" if rotation else "unknown"


def _duration(start: Any, end: Any) -> str | None:
    a, b = parse_time(start), parse_time(end)
    if a is None or b is None:
        return None
    seconds = int((b - a).total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60} s"


# -- the first screen: verdict, deadlines, fix-first actions, posture ------------------------

ACTIONS_OPEN = 3  # actions shown expanded on screen; print shows every one in full
# Failures written out in full (message, remediation) under their actions: what the printed
# report holds. Beyond it (a very large estate) the rest are counted, and the CSV, XLSX and
# JSON reports hold every one; the findings table of the page still lists all of them.
DETAILED_FAILURES_MAX = 1000
# Actions written out (with the cause's fix): a 100k-resource estate has 25,000, 70 MB of
# page. Beyond this many the page says how many more there are and where they are listed
# (the JSON report, the XLSX Actions sheet); every deadline is still shown.
ACTIONS_SHOWN_MAX = 500
# Dependents listed under each key in the key view; the rest are counted (the JSON report
# and the XLSX Key dependents sheet list every one).
KEY_USERS_SHOWN = 100


def _overview(doc: Mapping[str, Any]) -> dict[str, Any]:
    summary: Mapping[str, Any] = doc.get("summary") or {}
    code = summary.get("exit_code")
    verdict_class = {0: "ok", 1: "bad", 3: "warn"}.get(code if isinstance(code, int) else -1,
                                                      "warn")
    by_id = {f.get("id"): f for f in doc.get("findings") or [] if f.get("status") == "fail"}
    actions: list[dict[str, Any]] = []
    budget = DETAILED_FAILURES_MAX
    every = summary.get("actions") or []
    for a in every[:ACTIONS_SHOWN_MAX]:
        lead = a.get("remediation")
        failures = []
        left_out = 0
        for fid in a.get("finding_ids") or []:
            f = by_id.get(fid)
            if f is None:
                continue
            if budget <= 0:
                left_out += 1
                continue
            budget -= 1
            r = _resource(f)
            rem = f.get("remediation")
            failures.append({
                "rule_id": f.get("rule_id"), "title": f.get("title"),
                "doc": rule_doc(str(f.get("rule_id"))), "severity": f.get("severity"),
                "id": r.get("id"), "type": r.get("type"), "arn": r.get("arn"),
                "region": r.get("region"), "account_id": r.get("account_id"),
                "message": f.get("message"),
                # The action shows its lead fix once; a failure repeats only a different one.
                "remediation": rem if rem and rem != lead else None,
            })
        actions.append({**a, "failures": failures, "left_out": left_out,
                        "open": len(actions) < ACTIONS_OPEN})
    deadlines = [a for a in every if a.get("deadline")]
    hidden = every[ACTIONS_SHOWN_MAX:]
    verdict = str(summary.get("verdict") or "")
    if summary.get("fail_on_new") and "--fail-on-new" not in verdict:
        verdict += " · gate on new failures only (--fail-on-new)"
    return {
        "verdict": verdict,
        "verdict_class": verdict_class,
        "actions": actions,
        "actions_total": len(every),
        "actions_hidden": len(hidden),
        "actions_hidden_failures": sum(len(a.get("finding_ids") or []) for a in hidden),
        "deadlines": deadlines,
        "posture_rows": _posture_rows(doc),
        "postures": POSTURES,
        "pass_rules": _pass_rules(doc),
    }


def _posture_rows(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per scanned account and region, failing or not, with resources by posture."""
    scan: Mapping[str, Any] = doc.get("scan") or {}
    cells: dict[tuple[str, str], dict[str, Any]] = {}

    def cell(account: str, region: str) -> dict[str, Any]:
        found = cells.get((account, region))
        if found is None:
            found = cells[(account, region)] = {
                "account": account, "region": region, "postures": dict.fromkeys(POSTURES, 0),
                "resources": 0, "fail": 0, "critical": 0, "errors": 0}
        return found

    for account in scan.get("accounts") or []:
        for region in scan.get("regions") or []:
            cell(str(account), str(region))
    for r in doc.get("resources") or []:
        c = cell(str(r.get("account_id")), str(r.get("region")))
        posture = str(r.get("posture"))
        c["postures"][posture if posture in c["postures"] else "unknown"] += 1
        c["resources"] += 1
    for f in doc.get("findings") or []:
        if f.get("status") == "fail":
            r = _resource(f)
            c = cell(str(r.get("account_id")), str(r.get("region")))
            c["fail"] += 1
            c["critical"] += f.get("severity") == "critical"
    for e in doc.get("errors") or []:
        cell(str(e.get("account_id")), str(e.get("region")))["errors"] += 1
    rows = sorted(cells.values(), key=lambda c: (c["account"], c["region"]))
    return rows


def _pass_rules(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Pass evidence, collapsed: per rule, how many resources pass it."""
    from rdsaudit.rules import RULES

    counts: Counter[str] = Counter()
    for r in doc.get("resources") or []:
        counts.update(str(rule) for rule in r.get("passes") or [])
    return [{"rule_id": rule_id, "title": RULES[rule_id].title if rule_id in RULES else rule_id,
             "doc": rule_doc(rule_id), "count": n}
            for rule_id, n in sorted(counts.items())]
