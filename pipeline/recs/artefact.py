"""Model artefacts on disk: ``model.npz`` (arrays) and ``meta.json`` (version, settings, metrics).

A save writes a sibling temporary directory, flushes it to disk and renames
it into place, so a reader never sees a half-written model: it finds the old
directory, the new one, or (for the instant between two renames when one
already existed) none, and should retry. Arrays are read back with
``allow_pickle=False``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from pipeline.recs.model import Model
from pipeline.settings import TrainerSettings

__all__ = ["FORMAT", "load_model", "prune_models", "save_model"]

FORMAT = 1
"""Bumped when the artefact layout changes incompatibly."""
_ARRAYS, _META = "model.npz", "meta.json"


def save_model(model: Model, directory: Path) -> Path:
    """Write ``model`` to ``directory`` (created or replaced whole); returns the directory."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    try:
        has_seen = model.last_seen is not None
        with (tmp / _ARRAYS).open("wb") as fh:
            np.savez(
                fh,
                user_factors=model.user_factors,
                item_factors=model.item_factors,
                user_ids=np.asarray(model.user_ids, dtype=str),
                item_ids=np.asarray(model.item_ids, dtype=str),
                indptr=model.matrix.indptr,
                indices=model.matrix.indices,
                data=model.matrix.data,
                last_seen=model.last_seen if model.last_seen is not None else np.empty(0, np.int64),
                bm25_norm=model.bm25_norm if model.bm25_norm is not None else np.empty(0),
            )
            fh.flush()
            os.fsync(fh.fileno())
        meta = {
            "format": FORMAT,
            **model.meta(),
            "has_last_seen": has_seen,
            "has_bm25_norm": model.bm25_norm is not None,
        }
        with (tmp / _META).open("w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        old = None
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{secrets.token_hex(4)}")
            directory.rename(old)
        tmp.rename(directory)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def load_model(directory: Path) -> Model:
    """Read a model written by :func:`save_model`."""
    meta = json.loads((directory / _META).read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT:
        raise ValueError(f"{directory}: unsupported model format {meta.get('format')!r}")
    with np.load(directory / _ARRAYS, allow_pickle=False) as arrays:
        user_ids = arrays["user_ids"].tolist()
        item_ids = arrays["item_ids"].tolist()
        matrix = sp.csr_matrix(
            (arrays["data"], arrays["indices"], arrays["indptr"]), shape=(len(user_ids), len(item_ids))
        )
        return Model(
            user_factors=arrays["user_factors"],
            item_factors=arrays["item_factors"],
            user_ids=user_ids,
            item_ids=item_ids,
            matrix=matrix,
            last_seen=arrays["last_seen"] if meta["has_last_seen"] else None,
            settings=TrainerSettings.model_validate(meta["settings"]),
            version=meta["version"],
            trained_at=meta["trained_at"],
            n_interactions=meta["n_interactions"],
            metrics=meta["metrics"],
            bm25_norm=arrays["bm25_norm"] if meta.get("has_bm25_norm") else None,
        )


def prune_models(directory: Path, keep: str, newest: int = 1) -> list[str]:
    """Delete saved models under ``directory`` but ``keep`` and the ``newest`` most recent; returns them.

    ``newest=1`` after an erasure: every older model holds the erased users' factors.
    """
    if not directory.is_dir():
        return []
    saved = sorted(
        (p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
    )
    kept = {keep} | {p.name for p in saved[-newest:]}
    gone = [p for p in saved if p.name not in kept]
    for path in gone:
        shutil.rmtree(path, ignore_errors=True)
    return [p.name for p in gone]
