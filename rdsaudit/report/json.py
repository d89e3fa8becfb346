"""The JSON report: the machine contract, `schema_version` 2 (rdsaudit.report.contract).

Laid out one top-level member per line and one list item (finding, error, key…) per line:
grep- and diff-friendly, and written by json's C encoder (an indented dump goes through the
pure-Python encoder, five times slower on a large estate).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def render_json(doc: Mapping[str, Any]) -> str:
    members = []
    for name, value in doc.items():
        if isinstance(value, list) and value:
            items = ",\n    ".join(_dump(item) for item in value)
            members.append(f"  {_dump(name)}: [\n    {items}\n  ]")
        else:
            members.append(f"  {_dump(name)}: {_dump(value)}")
    return "{\n" + ",\n".join(members) + "\n}\n"
