"""The one step everything rdsaudit writes passes: no secret leaves the process.

`redact` removes, from any text about to be written (stderr, every report format, the saved
inventory, the history, log records):

* the exact credential values the process holds: the caller's access key id, secret key and
  session token, and those of every role it assumed (`remember_credentials`);
* anything shaped like an access key id (`AKIA…` long-term, `ASIA…` temporary);
* the values of `Authorization`, `X-Amz-Security-Token`, `X-Amz-Signature` and
  `X-Amz-Credential` (header or query-string form);
* the value after a credential field name (`SecretAccessKey`, `SessionToken`, …) in XML, JSON
  or `key=value` text: a truncated AssumeRole answer holds credentials that were never parsed,
  so they cannot be known as exact values.

`for_terminal` makes text safe to show on a terminal: control characters (C0 but newline
and tab, DEL, C1), bidirectional overrides and other invisible format characters are shown
as `\\x1b`-style escapes, so AWS data cannot colour, erase, retitle or reorder what is shown.
`say` writes one line to stderr through both.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Mapping
from typing import Any

import click

MASK = "[REDACTED]"
# Shorter values are not secrets worth hunting for (and would redact ordinary words, e.g.
# the emulator's "testing" credentials); real ones are 20 (key id), 40 (secret) and 100+
# (token) characters.
_MIN_SECRET = 8

_lock = threading.Lock()
_secrets: set[str] = set()
_ordered: tuple[str, ...] = ()  # the secrets, longest first (a longer one may hold a shorter)

# Access key ids: 16-128 characters, AKIA (long-term) or ASIA (temporary) + [A-Z0-9].
_KEY_ID = re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{12,124}(?![A-Za-z0-9])")
# Authorization: the rest of the line (it holds spaces and commas), up to a quote or markup.
_AUTHORIZATION = re.compile(r"(?i)(\bauthorization\b[\"']?\s*[:=]\s*[\"']?)[^\r\n\"'<>]+")
# Token-like header or query values: up to a separator.
_HEADER_VALUE = re.compile(
    r"(?i)(\bx-amz-(?:security-token|signature|credential)\b[\"']?\s*[:=]\s*[\"']?)"
    r"[^\s\"'&,;<>]+")
# A value after a credential field name: <SecretAccessKey>v, "SessionToken": "v", k=v.
_FIELD_VALUE = re.compile(
    r"(?i)(\b(?:secret_?access_?key|secret_?key|session_?token|security_?token|"
    r"aws_secret_access_key|aws_session_token)\b[\"']?(?:\s*[:=>]\s*|\s+)[\"']?)"
    r"[A-Za-z0-9/+=_\-]{8,}")


def remember_credentials(*values: str | None) -> None:
    """Hold these values (access key id, secret key, session token) as secrets to redact."""
    global _ordered
    fresh = {v for v in values if isinstance(v, str) and len(v) >= _MIN_SECRET}
    with _lock:
        if fresh <= _secrets:
            return
        _secrets.update(fresh)
        _ordered = tuple(sorted(_secrets, key=len, reverse=True))


def remember_session(session: Any) -> None:
    """Remember the credentials a boto3 session resolves to (none: nothing to remember)."""
    try:
        credentials = session.get_credentials()
        frozen = credentials.get_frozen_credentials() if credentials is not None else None
    except Exception:  # noqa: BLE001 - resolution fails later, where it is reported
        return
    if frozen is not None:
        remember_credentials(frozen.access_key, frozen.secret_key, frozen.token)
    _follow_refreshes(credentials)


def _follow_refreshes(credentials: Any) -> None:
    """Credentials that botocore refreshes (an assumed-role profile, SSO, a container or
    instance role) get new values mid-scan: remember each set as it arrives. botocore
    stores every refresh through `RefreshableCredentials._set_from_data`; that one method is
    wrapped on this object (a private name: if botocore renames it, nothing breaks and the
    values first resolved are still held, with the AKIA/ASIA and field-name rules)."""
    store = getattr(credentials, "_set_from_data", None)
    if store is None or getattr(store, "_rdsaudit_remembers", False):
        return

    def remembering(data: Any) -> None:
        store(data)
        remember_credentials(getattr(credentials, "_access_key", None),
                             getattr(credentials, "_secret_key", None),
                             getattr(credentials, "_token", None))

    remembering._rdsaudit_remembers = True  # type: ignore[attr-defined]
    try:
        credentials._set_from_data = remembering
    except AttributeError:  # a slotted or frozen credentials class: nothing to wrap
        return


def forget_credentials() -> None:
    """For tests: drop every remembered value."""
    global _ordered
    with _lock:
        _secrets.clear()
        _ordered = ()


# Each pattern runs only on text that holds its trigger (plain substring tests, which are
# fast even on a 100 MB report; a case-insensitive regex scan of it is not): the field
# names of _FIELD_VALUE with or without their underscores, lower-cased.
_FIELD_WORDS = ("secret_access", "secretaccess", "secret_key", "secretkey", "session_token",
                "sessiontoken", "security_token", "securitytoken")


def redact(text: str) -> str:
    """`text` without any secret (see the module docstring)."""
    for secret in _ordered:
        if secret in text:
            text = text.replace(secret, MASK)
    low = text.lower()
    if "authorization" in low:
        text = _AUTHORIZATION.sub(lambda m: m.group(1) + MASK, text)
    if "x-amz-" in low:
        text = _HEADER_VALUE.sub(lambda m: m.group(1) + MASK, text)
    # Every field word holds one of these three: most text is passed over by three tests.
    if ("secret" in low or "session" in low or "security" in low) and any(
            word in low for word in _FIELD_WORDS):
        text = _FIELD_VALUE.sub(lambda m: m.group(1) + MASK, text)
    if "AKIA" in text or "ASIA" in text:
        text = _KEY_ID.sub(MASK, text)
    return text


def redact_data(value: Any, *, in_place: bool = False) -> Any:
    """Every string (keys included) of a JSON-like structure redacted; the shape kept.

    Objects met twice (the report shares one resource dict between its findings) are
    redacted once and stay shared, and each distinct string is redacted once. With
    `in_place`, plain dicts and lists are changed where they are rather than copied (a
    100k-resource report's containers are 200 MB): for a structure no one else holds.
    """
    return _Walk(in_place)(value)


class _Walk:
    def __init__(self, in_place: bool = False) -> None:
        self._strings: dict[str, str] = {}
        self._seen: dict[int, Any] = {}
        self._in_place = in_place

    def __call__(self, value: Any) -> Any:
        kind = type(value)
        if kind is str:
            return self._string(value)
        if kind is dict:
            return self._dict(value)
        if kind is list:
            return self._list(value)
        if isinstance(value, str):
            return self._string(value)
        if isinstance(value, Mapping | list | tuple):
            held = self._seen.get(id(value))
            if held is not None:
                return held[1]
            if isinstance(value, Mapping):
                out: Any = {self(k): self(v) for k, v in value.items()}
            else:
                out = [self(v) for v in value]
            self._seen[id(value)] = (value, out)  # the original kept alive: ids stay unique
            return out
        return value

    def _string(self, value: str) -> str:
        done = self._strings.get(value)
        if done is None:
            done = self._strings[value] = redact(value)
        return done

    # Plain dicts and lists (all a report document holds) are walked here, with their
    # strings and scalars handled inline: the same result as __call__ on each item, without
    # a call per value (a 100k-resource document holds millions of them).

    # _dict and _list repeat the per-item step (string: redact once and remember; scalar:
    # as is; container: recurse) on purpose: it runs for every value of a large estate's
    # document, millions of times, where a call per item would be most of the cost.
    def _dict(self, value: dict[Any, Any]) -> Any:
        held = self._seen.get(id(value))
        if held is not None:
            return held[1]
        strings = self._strings
        if self._in_place and self._clean_keys(value):
            self._seen[id(value)] = (value, value)
            for k, v in value.items():
                kind = type(v)
                if kind is str:
                    done = strings.get(v)
                    if done is None:
                        done = strings[v] = redact(v)
                    if done is not v:
                        value[k] = done
                elif not (v is None or kind is int or kind is bool or kind is float):
                    done = self(v)
                    if done is not v:
                        value[k] = done
            return value
        out = {}
        for k, v in value.items():
            if type(k) is str:
                key = strings.get(k)
                if key is None:
                    key = strings[k] = redact(k)
            else:
                key = self(k)
            kind = type(v)
            if kind is str:
                done = strings.get(v)
                if done is None:
                    done = strings[v] = redact(v)
                out[key] = done
            elif v is None or kind is int or kind is bool or kind is float:
                out[key] = v
            else:
                out[key] = self(v)
        self._seen[id(value)] = (value, out)
        return out

    def _clean_keys(self, value: dict[Any, Any]) -> bool:
        """Whether every key is a string that redaction leaves as it is (else the dict is
        rebuilt: its keys change)."""
        strings = self._strings
        for k in value:
            if type(k) is not str:
                return False
            done = strings.get(k)
            if done is None:
                done = strings[k] = redact(k)
            if done != k:
                return False
        return True

    def _list(self, value: list[Any]) -> Any:
        held = self._seen.get(id(value))
        if held is not None:
            return held[1]
        strings = self._strings
        if self._in_place:
            self._seen[id(value)] = (value, value)
            for i, v in enumerate(value):
                kind = type(v)
                if kind is str:
                    done = strings.get(v)
                    if done is None:
                        done = strings[v] = redact(v)
                    if done is not v:
                        value[i] = done
                elif not (v is None or kind is int or kind is bool or kind is float):
                    done = self(v)
                    if done is not v:
                        value[i] = done
            return value
        out = []
        for v in value:
            kind = type(v)
            if kind is str:
                done = strings.get(v)
                if done is None:
                    done = strings[v] = redact(v)
                out.append(done)
            elif v is None or kind is int or kind is bool or kind is float:
                out.append(v)
            else:
                out.append(self(v))
        self._seen[id(value)] = (value, out)
        return out


def _unsafe(ch: str) -> bool:
    if ch in "\n\t":
        return False
    # Cc: C0, DEL and C1 controls; Cf: bidi overrides/isolates, zero-width characters;
    # Cs: lone surrogates; Zl/Zp: line and paragraph separators.
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")


_PLAIN = re.compile(r"[\x20-\x7e\n\t]*")


def for_terminal(text: str) -> str:
    """Control and format characters as visible escapes (`\\x1b`, `\\u202e`)."""
    if _PLAIN.fullmatch(text):
        return text
    out = []
    for ch in text:
        if _unsafe(ch):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def say(message: str, *, nl: bool = True) -> None:
    """One message to stderr, redacted and safe for a terminal."""
    click.echo(for_terminal(redact(message)), err=True, nl=nl)


class RedactingFilter(logging.Filter):
    """Redacts every record a handler emits (the `-v` logs and botocore's own)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: log its template
            message = str(record.msg)
        record.msg = for_terminal(redact(message))
        record.args = None
        if record.exc_info:
            formatter = logging.Formatter()
            record.exc_text = for_terminal(redact(formatter.formatException(record.exc_info)))
            record.exc_info = None
        return True
