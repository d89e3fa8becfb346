"""Hostile and malformed input files: always one clear line and exit 2, never a traceback.

Property-based: hypothesis generates config TOML, saved inventories and reports; the CLI's
own `main` runs in-process so thousands of cases take seconds.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rdsaudit.cli import main
from rdsaudit.serialize import dump_inventory
from tests.support.builders import backup, instance, inventory, kms_key, snapshot

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
toml_scalars = (st.booleans() | st.integers(-100, 100) | st.text(max_size=40)
                | st.lists(st.text(max_size=20), max_size=3))
CONFIG_KEYS = ["require_customer_managed_key", "min_backup_retention_days", "regions",
               "fail_on", "target_keys", "colour", "minimum_key_protection",
               "key_protection", "key_material_expiry_days"]


def run_main(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    code = -1
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(list(args))
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    return code, err.getvalue()


def assert_clean_outcome(code: int, stderr: str) -> None:
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    assert code in (0, 1, 2, 3), (code, stderr)
    if code == 2:
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rdsaudit: error: "), stderr


VALID = json.loads(dump_inventory(inventory(
    instance("db1"), instance("plain", encrypted=False), snapshot(), backup(encrypted=False),
    keys=(kms_key(),))))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


PATHS = [p for p in _paths(VALID) if p]


def _mutate(doc: Any, path: tuple[Any, ...], new: Any, delete: bool) -> Any:
    doc = json.loads(json.dumps(doc))
    target = doc
    for part in path[:-1]:
        target = target[part]
    if delete and isinstance(target, dict):
        target.pop(path[-1], None)
    else:
        target[path[-1]] = new
    return doc


@SETTINGS
@given(config=st.dictionaries(st.sampled_from(CONFIG_KEYS), toml_scalars, max_size=4))
def test_any_config_is_accepted_or_refused_cleanly(tmp_path: Path, config: dict[str, Any]
                                                   ) -> None:
    inv = tmp_path / "inv.json"
    inv.write_text(json.dumps(VALID))
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(config))
    code, stderr = run_main("evaluate", str(inv), "--config", str(path), "--quiet")
    assert_clean_outcome(code, stderr)
    if code == 2:
        assert str(path) in stderr


@SETTINGS
@given(text=st.text(max_size=200))
def test_any_config_text_is_accepted_or_refused_cleanly(tmp_path: Path, text: str) -> None:
    inv = tmp_path / "inv.json"
    inv.write_text(json.dumps(VALID))
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    assert_clean_outcome(*run_main("evaluate", str(inv), "--config", str(path), "--quiet"))


@SETTINGS
@given(path=st.sampled_from(PATHS), new=json_values, delete=st.booleans())
def test_any_mutated_inventory_is_judged_or_refused_cleanly(tmp_path: Path,
                                                           path: tuple[Any, ...], new: Any,
                                                           delete: bool) -> None:
    file = tmp_path / "inv.json"
    file.write_text(json.dumps(_mutate(VALID, path, new, delete)))
    assert_clean_outcome(*run_main("evaluate", str(file), "--quiet"))


@SETTINGS
@given(raw=st.binary(max_size=300))
def test_any_bytes_as_inventory_or_report_are_refused_cleanly(tmp_path: Path, raw: bytes
                                                               ) -> None:
    file = tmp_path / "x.json"
    file.write_bytes(raw)
    for command in ("evaluate", "plan"):
        code, stderr = run_main(command, str(file), "--quiet") if command == "evaluate" else \
            run_main(command, str(file))
        assert_clean_outcome(code, stderr)
        assert code == 2


@SETTINGS
@given(path=st.sampled_from([("findings",), ("findings", 0), ("findings", 0, "remediation"),
                             ("findings", 0, "remediation", "steps"),
                             ("findings", 0, "resource"), ("schema_version",)]),
       new=json_values)
def test_any_mutated_report_is_planned_or_refused_cleanly(tmp_path: Path,
                                                          path: tuple[Any, ...],
                                                          new: Any) -> None:
    inv = tmp_path / "inv.json"
    inv.write_text(json.dumps(VALID))
    out = tmp_path / "out"
    run_main("evaluate", str(inv), "--output-dir", str(out), "--quiet")
    report = json.loads((out / "rdsaudit-report.json").read_text())
    with contextlib.suppress(IndexError, KeyError, TypeError):
        report = _mutate(report, path, new, delete=False)
    file = tmp_path / "r.json"
    file.write_text(json.dumps(report))
    assert_clean_outcome(*run_main("plan", str(file)))


def _built(build: Any, body: Any) -> tuple[str, Any]:
    from rdsaudit.serialize import BadValue

    try:
        return "ok", build(body)
    except BadValue as bad:
        return "refused", str(bad)


hostile_text = st.text(alphabet=st.characters(codec=None, categories=None), max_size=8) | \
    st.sampled_from(["\ud800", "a\x00b", "caf\u00e9", "\u202e", " ", "", "x" * 3])


@SETTINGS
@given(path=st.sampled_from(PATHS), new=json_values | hostile_text, delete=st.booleans())
def test_fast_loader_builds_or_refuses_exactly_as_the_reflective_one(
        path: tuple[Any, ...], new: Any, delete: bool) -> None:
    # The generated builder (serialize._fast_builder) must make the same records as the
    # reflective `build_reflective`, and refuse what it refuses with the same path and words.
    from rdsaudit.model import Inventory
    from rdsaudit.serialize import build_generated, build_reflective

    doc = _mutate(VALID, path, new, delete)
    body = {k: v for k, v in doc.items() if k not in ("format", "version")}
    # The fast path drops the parsed records as it builds them: each gets its own copy.
    fast = _built(lambda b: build_generated(Inventory, b, "inventory"),
                  json.loads(json.dumps(body)))
    slow = _built(lambda b: build_reflective(Inventory, b, "inventory"), body)
    assert fast == slow


@SETTINGS
@given(path=st.sampled_from(PATHS), new=json_values | hostile_text, delete=st.booleans(),
       layout=st.sampled_from([None, 1, "\t"]), extra=st.sampled_from(["", " \n", "x", "{}"]))
def test_streamed_loading_takes_only_what_the_whole_reading_takes_the_same(
        tmp_path: Path, path: tuple[Any, ...], new: Any, delete: bool, layout: Any,
        extra: str) -> None:
    # serialize.streamed_inventory builds each record as it is parsed; it must give the
    # inventory the whole reading gives, or None (then the whole reading decides).
    from rdsaudit.serialize import (
        InventoryProblem,
        shared_values,
        streamed_inventory,
        whole_inventory,
    )

    doc = _mutate(VALID, path, new, delete)
    text = json.dumps(doc, indent=layout) + extra
    streamed = streamed_inventory(text)
    shared_values.clear()
    try:
        whole: Any = whole_inventory(text, tmp_path / "inv.json")
    except InventoryProblem:
        whole = None
    shared_values.clear()
    assert streamed is None or streamed == whole
    if not delete and layout is None and not extra and doc == VALID:
        assert streamed is not None and streamed == whole


def test_streamed_loading_is_what_a_saved_inventory_takes() -> None:
    from rdsaudit.serialize import streamed_inventory

    assert streamed_inventory(dump_inventory(inventory(
        instance("db1"), instance("plain", encrypted=False), snapshot(),
        backup(encrypted=False), keys=(kms_key(),)))) is not None
