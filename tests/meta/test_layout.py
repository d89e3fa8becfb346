"""The tree is the table of contents: tests use each layer's public names only, and the
core never reaches into the demo.

A test that imports `_private` from another package's module (or reads `module._private`)
pins an implementation detail of a layer it does not own; the emulator's own tests are the
exception, since the emulator is theirs. The core (everything outside `rdsaudit/demo/`)
importing the demo would make moto a dependency of a real scan.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OWN_EMULATOR_TESTS = {"tests/demo/test_emulator.py"}


def _private_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    modules: dict[str, str] = {}  # local name -> rdsaudit module
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                "rdsaudit"):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{node.lineno}: from {node.module} import {alias.name}")
                else:
                    modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("rdsaudit"):
                    modules[alias.asname or alias.name.split(".")[0]] = alias.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in modules and node.attr.startswith("_")
                and not node.attr.startswith("__")):
            found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
    return found


def _test_files() -> list[Path]:
    """Every test module but the emulator's own (the emulator is theirs)."""
    return sorted(p for p in (ROOT / "tests").rglob("*.py")
                  if str(p.relative_to(ROOT)) not in OWN_EMULATOR_TESTS)


@pytest.mark.parametrize("path", _test_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_tests_use_public_names_only(path: Path) -> None:
    assert _private_uses(path) == []


def test_the_probe_sees_a_private_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from rdsaudit.report.html import _environment\n"
                      "from rdsaudit.demo import emulator\n"
                      "emulator._q('x')\n")
    assert _private_uses(sample) == ["1: from rdsaudit.report.html import _environment",
                                     "3: emulator._q"]


def test_the_core_never_imports_the_demo() -> None:
    offenders = []
    for path in sorted((ROOT / "rdsaudit").rglob("*.py")):
        if "demo" in path.relative_to(ROOT / "rdsaudit").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names
                          if n.startswith(("rdsaudit.demo", "moto", "werkzeug"))]
    # The CLI's `demo` command is the one door, and it imports the demo lazily, inside
    # the command (tests/e2e/test_core_without_demo.py shows a scan never opens it).
    assert sorted(set(offenders)) == ["rdsaudit/cli.py: rdsaudit.demo.estate"]


def test_every_package_is_installed() -> None:
    """`pip install .` (not editable) ships only the packages pyproject lists: a new
    sub-package left out would import in the tests and be missing from a real install."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "rdsaudit").rglob("__init__.py")}
    assert found - listed == set()
