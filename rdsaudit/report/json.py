"""The JSON report: the machine contract, `schema_version` 2 (rdsaudit.report.contract).

Laid out one top-level member per line and one list item (finding, error, key…) per line:
grep- and diff-friendly, and written by json's C encoder (an indented dump goes through the
pure-Python encoder, five times slower on a large estate).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from rdsaudit.serialize import json_lines


def dump_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def render_json(doc: Mapping[str, Any]) -> str:
    return "".join(iter_json(doc))


def iter_json(doc: Mapping[str, Any]) -> Iterator[str]:
    """The report a line at a time (a member, or one item of a list), for writing straight
    to the file: a large estate's report is never held as one string."""
    return json_lines(list(doc.items()), dump_value, "  ", inner={"summary": "actions"})
