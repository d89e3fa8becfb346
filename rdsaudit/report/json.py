"""The JSON report: the machine contract, `schema_version` 1."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def render_json(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
