"""The tests stay tidy: read from the source, no Kafka or Redis needed.

- no test module imports another test module (shared fixtures live in a
  folder's ``conftest.py``, shared helpers in ``tests/support/`` or a
  ``*harness.py``), so running one test file never runs another's setup;
- nothing uses ``abs(hash(...))`` for a stable value: ``hash`` of a string is
  salted per process, so such a value changes from run to run (use
  ``zlib.crc32`` or ``hashlib``).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
_TEST_MODULE = re.compile(r"(^|\.)(test_\w+|conftest)$")


def _imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, module)`` for each import in ``path``, in functions too; ``from a import b`` names both."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            yield from ((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)


def test_no_test_module_imports_another() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted(TESTS.rglob("*.py"))
        for line, module in _imported_modules(path)
        if module.startswith("tests.") and _TEST_MODULE.search(module)
    ]
    assert found == []


def test_no_per_process_hash_as_a_stable_value() -> None:
    needle = re.compile(r"abs\(\s*hash\(")
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in ("tests", "pipeline", "agents")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != Path(__file__).resolve()  # its docstring names the pattern
        for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if needle.search(text)
    ]
    assert found == []


def test_the_checks_see_what_they_look_for(tmp_path: Path) -> None:
    sample = tmp_path / "test_sample.py"
    sample.write_text(
        "import tests.integration.conftest\n"
        "from tests.unit import test_scrub\n"
        "from tests.support.events import playback_event\n"
        "def f():\n"
        "    from tests.unit.test_stream_processor import event\n"
    )
    flagged = {m for _, m in _imported_modules(sample) if _TEST_MODULE.search(m)}
    assert flagged == {
        "tests.integration.conftest",
        "tests.unit.test_scrub",
        "tests.unit.test_stream_processor",
    }
