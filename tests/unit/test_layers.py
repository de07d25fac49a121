"""The layers stay layered: read from the source's AST, no Kafka or Redis needed.

- ``pipeline/`` is the library and never imports ``agents/``;
- ``agents/cli`` only parses, calls and prints, so nothing outside it imports it
  (process assembly lives in ``agents/processes``; tests run the CLI as a
  subprocess through ``tests/cli.py``);
- no two modules import each other, at import time or lazily inside a function
  (a package importing its own submodules is not a circle).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(*folders: str) -> dict[str, Path]:
    return {_module_name(p): p for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))}


def imported(module: str, path: Path, known: set[str]) -> Iterator[tuple[int, str]]:
    """``(line, module)`` for every import in ``path``, anywhere in it (functions included).

    ``from a import b`` names ``a.b`` when that is a module, else ``a``; relative imports are resolved.
    """
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                full = f"{source}.{alias.name}"
                yield node.lineno, full if full in known else source


def _is_under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def offenders(folders: tuple[str, ...], forbidden: str, *, exempt: str | None = None) -> list[str]:
    mods = _modules(*folders)
    known = set(_modules("agents", "pipeline", "tests"))
    return [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for module, path in mods.items()
        if not (exempt and _is_under(module, exempt))
        for line, name in imported(module, path, known)
        if _is_under(name, forbidden)
    ]


def test_pipeline_never_imports_agents() -> None:
    assert offenders(("pipeline",), "agents") == []


def test_nothing_outside_the_cli_imports_it() -> None:
    """Only the CLI and the unit tests of its own parsing and printing (``test_cli_*``) import it."""
    found = offenders(("agents", "pipeline", "tests"), "agents.cli", exempt="agents.cli")
    assert [f for f in found if not f.startswith("tests/unit/test_cli_")] == []


def test_no_two_modules_import_each_other() -> None:
    mods = _modules("agents", "pipeline")
    known = set(mods)
    edges = {
        (module, name)
        for module, path in mods.items()
        for _, name in imported(module, path, known)
        if name in known and name != module and not _is_under(name, module)  # a package's own parts
    }
    circles = sorted(f"{a} <-> {b}" for a, b in edges if (b, a) in edges and a < b)
    assert circles == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from agents.cli.train import report_dict\n", "agents.cli.train"),
        ("def f():\n    from agents import cli\n", "agents.cli"),
        ("import agents.cli\n", "agents.cli"),
        ("from ..cli import train\n", "agents.cli.train"),
    ],
)
def test_the_checks_see_every_form_of_import(tmp_path: Path, source: str, expected: str) -> None:
    """The walker is the test: a form it missed would let a layering break through unseen."""
    fake = tmp_path / "x.py"
    fake.write_text(source, encoding="utf-8")
    known = {"agents.cli", "agents.cli.train", "agents.bench.x"}
    names = [name for _, name in imported("agents.bench.x", fake, known)]
    assert expected in names
