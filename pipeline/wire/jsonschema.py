"""Generate the JSON Schema files in ``schemas/`` from the wire structs.

The structs are the single source of truth; the files are derived, published
artifacts for producers in other languages. ``tests/unit/test_schemas_agree.py``
fails when a committed file differs from what :func:`generate` returns, so the
two cannot drift. Regenerate with::

    python -m pipeline.wire.jsonschema          # rewrite schemas/*.json
    python -m pipeline.wire.jsonschema --check  # exit 1 if any file is stale

One known leniency of the code versus the files: msgspec does not require the
``schema`` tag of a struct decoded on its own (if present it must match). That
affects events *inside* a ``playback.batch.v1`` envelope and records read with
:func:`pipeline.wire.decode.decode_as`; ``decode_raw`` and ``decode_consent``
require the top-level tag. The files require it everywhere, as the contract
does, and producers must send it.

Two checks live in the decoder rather than in the structs: the ``content_id``
pattern (the files carry the default of setting ``stream.content_id_pattern``;
a deployment may configure another) and the cross-field bounds
``position_ms``/``watched_ms`` <= ``duration_ms`` + 60 s, which JSON Schema
cannot express (the files carry the static bound of each field).
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from pipeline.wire import inbound, outbound, rights

__all__ = ["RECORDS", "generate", "main", "render", "write"]

DRAFT = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "urn:privrec:schema:"
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "schemas"

RECORDS: dict[str, type[msgspec.Struct]] = {
    inbound.PLAYBACK: inbound.PlaybackEvent,
    inbound.PLAYBACK_BATCH: inbound.PlaybackBatch,
    inbound.CONSENT: inbound.ConsentRecord,
    outbound.REDACTED: outbound.RedactedEvent,
    outbound.REDACTED_BATCH: outbound.RedactedBatch,
    outbound.INTERACTION: outbound.Interaction,
    outbound.DLQ: outbound.DeadLetter,
    rights.ERASURE: rights.ErasureRequest,
    rights.ERASURE_STAGE: rights.ErasureStage,
    rights.RECEIPT: rights.Receipt,
}
"""Schema name (= its ``schema`` tag and file stem) -> the struct behind it."""


def generate() -> dict[str, dict[str, Any]]:
    """Return ``{name: JSON Schema document}`` for every record in RECORDS."""
    return {name: _document(name, cls) for name, cls in RECORDS.items()}


def render(document: dict[str, Any]) -> str:
    """Serialise a schema document the way the committed files are written."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(directory: Path = DEFAULT_DIR) -> list[Path]:
    """(Re)write ``<directory>/<name>.json`` for every schema; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, document in generate().items():
        path = directory / f"{name}.json"
        path.write_text(render(document), encoding="utf-8")
        paths.append(path)
    return paths


def _document(name: str, cls: type[msgspec.Struct]) -> dict[str, Any]:
    generated = msgspec.json.schema(cls)
    defs: dict[str, Any] = generated.get("$defs", {})
    root_key = generated["$ref"].rsplit("/", 1)[1]
    root = dict(defs[root_key])
    ref = json.dumps(f"#/$defs/{root_key}")
    if ref not in json.dumps({k: v for k, v in defs.items() if k != root_key}):
        del defs[root_key]
    for component in defs.values():
        if "description" in component:
            component["description"] = inspect.cleandoc(component["description"])
    root.pop("title", None)
    root.pop("description", None)
    document = {
        "$schema": DRAFT,
        "$id": f"{ID_BASE}{name}",
        "title": name,
        "description": inspect.cleandoc(cls.__doc__ or name),
        **root,
    }
    if defs:
        document["$defs"] = defs
    return document


def main(argv: list[str] | None = None) -> int:
    """Command line entry: write the files, or ``--check`` that they are current."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.wire.jsonschema")
    parser.add_argument("--check", action="store_true", help="only compare")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args(argv)
    if not args.check:
        for path in write(args.dir):
            print(path)
        return 0
    stale = [
        name
        for name, document in generate().items()
        if not (args.dir / f"{name}.json").is_file()
        or (args.dir / f"{name}.json").read_text(encoding="utf-8") != render(document)
    ]
    for name in stale:
        print(f"stale: {name}.json", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
