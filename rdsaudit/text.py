"""What text from outside (AWS answers, saved reports and inventories) may be.

Two kinds, treated differently on the way in:

* an **identifier** (a DB, snapshot or cluster id, an ARN, an account id, a region, a key
  id or alias) is used as is in remediation commands and look-ups: one holding a control
  character or invalid Unicode (a lone surrogate) is refused, never "cleaned" into another
  name that a runbook would then act on;
* **free text** (tags, descriptions, messages) is made valid Unicode (a lone surrogate
  becomes U+FFFD) so no writer ever fails on it, and is escaped wherever it is shown.
"""

from __future__ import annotations

import re
import unicodedata

_SURROGATE = re.compile("[\ud800-\udfff]")
_PLAIN = re.compile(r"[\x21-\x7e]*")


def identifier_problem(value: str) -> str | None:
    """Why `value` cannot be an identifier, or None when it can."""
    if _PLAIN.fullmatch(value):
        return None
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cs":
            return "is not valid Unicode"
        if category in ("Cc", "Cf", "Zl", "Zp"):
            return f"holds the control character U+{ord(ch):04X}"
    return None


def valid_text(value: str) -> str:
    """Free text as valid Unicode: lone surrogates become U+FFFD."""
    return _SURROGATE.sub("\ufffd", value)


def shown(value: str) -> str:
    """An identifier that was refused, in a form safe to report (escapes, valid Unicode)."""
    out = []
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)
