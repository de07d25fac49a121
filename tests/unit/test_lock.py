"""requirements.lock pins, with hashes, every dependency pyproject.toml names (main and dev extra),
at a version inside pyproject's range: a dependency added to pyproject without `make lock` fails here
rather than in `make install --require-hashes`."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(d) for d in project["dependencies"] + project["optional-dependencies"]["dev"]]


def _pins() -> dict[str, tuple[str, int]]:
    """Normalised name -> (pinned version, number of hashes) from the lock file."""
    pins: dict[str, tuple[str, int]] = {}
    name = None
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        head = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", line)
        if head:
            name = canonicalize_name(head.group(1))
            pins[name] = (head.group(2), 0)
        elif name and line.strip().startswith("--hash=sha256:"):
            version, hashes = pins[name]
            pins[name] = (version, hashes + 1)
    return pins


def test_every_declared_dependency_is_pinned_with_hashes_inside_its_range() -> None:
    pins = _pins()
    declared = _declared()
    assert len(declared) > 20  # the parse found pyproject's lists
    missing = [r.name for r in declared if canonicalize_name(r.name) not in pins]
    assert missing == [], f"not in requirements.lock (run `make lock`): {missing}"
    for req in declared:
        version, hashes = pins[canonicalize_name(req.name)]
        assert req.specifier.contains(version, prereleases=True), f"{req.name}=={version} not in {req}"
        assert hashes >= 1, f"{req.name} has no hash in requirements.lock"


def test_every_pin_is_exact_and_hashed() -> None:
    pins = _pins()
    assert pins, "requirements.lock has no pins"
    assert [n for n, (_, hashes) in pins.items() if hashes == 0] == []


def test_make_install_and_the_image_install_from_the_lock_with_hashes() -> None:
    for path in ("Makefile", "compose/Dockerfile"):
        text = (ROOT / path).read_text()
        assert re.search(r"pip install[^\n]*--require-hashes -r (requirements\.lock|\$\(LOCK\))", text), path
        assert re.search(r"pip install[^\n]*--no-deps", text), path
