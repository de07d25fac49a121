"""Item×item families: a user's scores are their history times an item×item weight matrix.

EASE (a dense ``B``) and ItemKNN (a sparse top-K similarity) differ only in
how they fit the weights (:mod:`pipeline.recs.itemitem_fits`); scoring,
fold-in, explanations, erasure and persistence are shared here. Because the
score of title ``i`` is exactly ``Σⱼ xⱼ Wⱼᵢ`` over the titles ``j`` the user
watched, each term is that title's contribution: the explanation is exact and
differs between recommendations whenever their weights do. Fold-in costs
nothing beyond replacing the user's row: there are no user factors. The
``limited`` list is the same product over the user's recent titles only.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from pipeline.recs import _rows
from pipeline.recs.als import TrainingError, TrainingInput
from pipeline.recs.confidence import confidence
from pipeline.recs.matrix import InteractionStore
from pipeline.recs.model import DEFAULT_RECENT_DAYS, new_version
from pipeline.recs.records import record_rows
from pipeline.recs.types import PopularItem, Recommendation, UserRecs
from pipeline.settings import TrainerSettings

__all__ = ["ARRAYS", "META", "ItemItemFamily", "TrainingInput", "ranked", "training_matrix"]


ARRAYS, META = "model.npz", "meta.json"
_FORMAT = 2
_BATCH = 1024


def training_matrix(
    data: TrainingInput, settings: TrainerSettings
) -> tuple[sp.csr_matrix, list[str], list[str]]:
    """``(users×items float32 csr, user_ids, item_ids)``; a store is weighed by its confidence."""
    if isinstance(data, InteractionStore):
        matrix, users, items = data.to_csr(settings)
    else:
        raw, users, items = data
        matrix = sp.csr_matrix(raw, dtype=np.float32)
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix, list(users), list(items)


def ranked(seen: np.ndarray, share: np.ndarray, item_ids: Sequence[str], top: int) -> list[tuple[str, float]]:
    """``(content_id, share)`` of the positive shares, largest first (ties by column)."""
    order = np.lexsort((seen, -share))[:top]
    return [(item_ids[int(seen[j])], float(share[j])) for j in order if share[j] > 0.0]


class ItemItemFamily:
    """Shared state and behaviour; subclasses set ``name`` and implement ``_fit_weights``."""

    name = "itemitem"

    def __init__(self, settings: TrainerSettings) -> None:
        self.settings = settings
        self.weights: np.ndarray | sp.csr_matrix | None = None
        self.matrix = sp.csr_matrix((0, 0), dtype=np.float32)
        self.last_seen = np.empty(0, np.int64)  # epoch ms per entry of ``matrix`` (0: unknown)
        self.trained_at = 0
        self.version = ""
        self.n_interactions = 0
        self.metrics: dict[str, Any] = {}
        self.user_ids: list[str] = []
        self.item_ids: list[str] = []
        self._user_index: dict[str, int] = {}
        self._item_index: dict[str, int] = {}

    # -- the seam ------------------------------------------------------------

    def fit(self, data: TrainingInput) -> None:
        if isinstance(data, InteractionStore):
            pairs = data.pairs()
            matrix = pairs.to_csr(confidence(pairs, self.settings))
            users, items, last_seen, n_windows = (
                pairs.user_ids,
                pairs.item_ids,
                pairs.last_seen,
                pairs.n_windows,
            )
        else:
            matrix, users, items = training_matrix(data, self.settings)
            last_seen, n_windows = np.zeros(matrix.nnz, np.int64), matrix.nnz
        if matrix.nnz == 0:
            raise TrainingError("no interactions to train on")
        self.trained_at = int(time.time() * 1000)
        self.version, self.n_interactions, self.metrics = new_version(self.trained_at), int(n_windows), {}
        self.weights = self._fit_weights(matrix)
        self.last_seen = np.asarray(last_seen, np.int64)
        self._set(sp.csr_matrix(matrix, dtype=np.float32), list(users), list(items))

    def fold_in(self, histories: Mapping[str, Mapping[str, float]]) -> dict[str, int]:
        now = int(time.time() * 1000)
        updates, result, new_users = _rows.history_rows(
            histories, self._item_index, self._user_index, len(self.user_ids), now
        )
        self._apply_rows(updates, new_users)
        return result

    def fold_in_records(self, histories: Mapping[str, Iterable[Mapping[str, Any] | Any]]) -> dict[str, int]:
        updates, result, new_users = record_rows(
            histories, self._item_index, self._user_index, len(self.user_ids), self.settings
        )
        self._apply_rows(updates, new_users)
        return result

    def recommend(self, pseudonym: str, n: int = 10, *, explain: bool = True) -> list[Recommendation]:
        row = self._user_index.get(pseudonym)
        if row is None:
            return []
        ((ids, scores),) = self._top(np.asarray([row]), n)
        seen, values = self._history(row)
        recs = []
        for i, score in zip(ids.tolist(), scores.tolist(), strict=True):
            because: tuple[str, ...] = ()
            if explain:
                because = tuple(c for c, _ in ranked(seen, values * self._column(seen, i), self.item_ids, 3))
            recs.append(Recommendation(content_id=self.item_ids[i], score=float(score), because=because))
        return recs

    def recommend_all(
        self, n: int | None = None, *, recent_days: float | None = DEFAULT_RECENT_DAYS, explain: bool = True
    ) -> dict[str, UserRecs]:
        n = self.settings.top_n if n is None else n
        recent = None
        if recent_days is not None:
            recent = _rows.recent_rows(self.matrix, self.last_seen, recent_days)
        out: dict[str, UserRecs] = {}
        for start in range(0, len(self.user_ids), _BATCH):
            rows = np.arange(start, min(start + _BATCH, len(self.user_ids)))
            full = self._lists(self.matrix, rows, n, explain, self.matrix)
            limited = self._lists(recent, rows, n, explain, self.matrix) if recent is not None else None
            for k, r in enumerate(rows.tolist()):
                out[self.user_ids[r]] = UserRecs(full=full[k], limited=limited[k] if limited else [])
        return out

    def popular(self, n: int = 100, *, min_users: int = 1) -> list[PopularItem]:
        counts = np.bincount(self.matrix.indices, minlength=len(self.item_ids))
        order = np.lexsort((np.arange(len(self.item_ids)), -counts))[:n]
        return [
            PopularItem(content_id=self.item_ids[i], score=float(counts[i]))
            for i in order.tolist()
            if counts[i] >= max(min_users, 1)
        ]

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __contains__(self, pseudonym: object) -> bool:
        return pseudonym in self._user_index

    def meta(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "family": self.name,
            "trained_at": self.trained_at,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "n_interactions": self.n_interactions,
            "settings": self.settings.model_dump(mode="json"),
            "metrics": self.metrics,
        }

    def recommend_ids(self, pseudonyms: Iterable[str], n: int = 10) -> dict[str, list[str]]:
        known = [p for p in pseudonyms if p in self._user_index]
        rows = np.asarray([self._user_index[p] for p in known], np.int64)
        out: dict[str, list[str]] = {}
        for start in range(0, len(rows), _BATCH):
            chunk = rows[start : start + _BATCH]
            for r, (ids, _) in zip(chunk.tolist(), self._top(chunk, n), strict=True):
                out[self.user_ids[r]] = [self.item_ids[i] for i in ids.tolist()]
        return out

    def explain(self, pseudonym: str, content_id: str, top: int = 3) -> list[tuple[str, float]]:
        row, col = self._user_index.get(pseudonym), self._item_index.get(content_id)
        if row is None or col is None:
            return []
        seen, values = self._history(row)
        return ranked(seen, values * self._column(seen, col), self.item_ids, top)

    def remove_users(self, pseudonyms: Iterable[str]) -> int:
        drop = np.asarray(
            sorted({self._user_index[p] for p in pseudonyms if p in self._user_index}), np.int64
        )
        if len(drop) == 0:
            return 0
        matrix, self.last_seen = _rows.drop_rows(self.matrix, self.last_seen, drop)
        gone = set(drop.tolist())
        self._set(matrix, [u for i, u in enumerate(self.user_ids) if i not in gone], self.item_ids)
        return len(drop)

    def save(self, directory: Path) -> Path:
        arrays: dict[str, Any] = {
            "user_ids": np.asarray(self.user_ids, dtype=str),
            "item_ids": np.asarray(self.item_ids, dtype=str),
            "indptr": self.matrix.indptr,
            "indices": self.matrix.indices,
            "data": self.matrix.data,
            "last_seen": self.last_seen,
        }
        w = self._weights
        if isinstance(w, np.ndarray):
            arrays["weights"] = w
        else:
            arrays.update(w_indptr=w.indptr, w_indices=w.indices, w_data=w.data)
        meta = {"format": _FORMAT, **self.meta()}
        return _write_dir(directory, arrays, meta)

    @classmethod
    def load(cls, directory: Path) -> ItemItemFamily:
        meta = json.loads((directory / META).read_text(encoding="utf-8"))
        if meta.get("format") != _FORMAT or meta.get("family") != cls.name:
            raise ValueError(f"{directory}: not a {cls.name} model of format {_FORMAT}")
        model = cls(TrainerSettings.model_validate(meta["settings"]))
        model.version, model.trained_at = meta["version"], int(meta["trained_at"])
        model.n_interactions, model.metrics = int(meta["n_interactions"]), dict(meta["metrics"])
        with np.load(directory / ARRAYS, allow_pickle=False) as a:
            users, items = a["user_ids"].tolist(), a["item_ids"].tolist()
            matrix = sp.csr_matrix((a["data"], a["indices"], a["indptr"]), shape=(len(users), len(items)))
            model.last_seen = np.asarray(a["last_seen"], np.int64)
            if "weights" in a:
                model.weights = np.asarray(a["weights"])
            else:
                model.weights = sp.csr_matrix(
                    (a["w_data"], a["w_indices"], a["w_indptr"]), shape=(len(items), len(items))
                )
        model._set(matrix, users, items)
        return model

    # -- internals -----------------------------------------------------------

    def _fit_weights(self, matrix: sp.csr_matrix) -> np.ndarray | sp.csr_matrix:
        raise NotImplementedError

    @property
    def _weights(self) -> np.ndarray | sp.csr_matrix:
        if self.weights is None:
            raise RuntimeError(f"{self.name}: fit() first")
        return self.weights

    def _apply_rows(self, updates: dict[int, _rows.RowData], new_users: list[str]) -> None:
        if updates:
            n_rows = len(self.user_ids) + len(new_users)
            matrix, self.last_seen = _rows.replace_rows(self.matrix, self.last_seen, updates, n_rows)
            self._set(matrix, self.user_ids + new_users, self.item_ids)

    def _lists(
        self, x: sp.csr_matrix, rows: np.ndarray, n: int, explain: bool, seen: sp.csr_matrix
    ) -> list[list[Recommendation]]:
        """Per row: top ``n`` titles unseen in ``seen`` scored and explained from the history ``x``."""
        out = []
        for r, (ids, scores) in zip(rows.tolist(), self._top(rows, n, x, seen), strict=True):
            lo, hi = x.indptr[r], x.indptr[r + 1]
            hist, values = x.indices[lo:hi], x.data[lo:hi].astype(np.float64)
            reasons: list[tuple[str, ...]] = [() for _ in range(len(ids))]
            if explain and len(hist) and len(ids):
                reasons = _top_terms(hist, self._terms(hist, ids) * values[:, None], self.item_ids)
            out.append(
                [
                    Recommendation(content_id=self.item_ids[i], score=float(score), because=because)
                    for i, score, because in zip(ids.tolist(), scores.tolist(), reasons, strict=True)
                ]
            )
        return out

    def _set(self, matrix: sp.csr_matrix, users: list[str], items: list[str]) -> None:
        self.matrix, self.user_ids, self.item_ids = matrix, users, items
        self._user_index = {u: i for i, u in enumerate(users)}
        self._item_index = {c: i for i, c in enumerate(items)}

    def _history(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.matrix.indptr[row], self.matrix.indptr[row + 1]
        return self.matrix.indices[lo:hi], self.matrix.data[lo:hi].astype(np.float64)

    def _terms(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """``W[rows][:, cols]`` as a dense float64 block (gathered without scipy's fancy indexing)."""
        w = self._weights
        if isinstance(w, np.ndarray):
            return np.asarray(w[np.ix_(rows, cols)], np.float64)
        starts, lens = w.indptr[rows], np.diff(w.indptr)[rows]
        at = np.repeat(np.arange(len(rows)), lens)
        pos = np.arange(int(lens.sum())) + np.repeat(starts - (np.cumsum(lens) - lens), lens)
        order = np.argsort(cols)
        found = np.minimum(np.searchsorted(cols[order], w.indices[pos]), len(cols) - 1)
        hit = cols[order][found] == w.indices[pos]
        out = np.zeros((len(rows), len(cols)), np.float64)
        out[at[hit], order[found[hit]]] = w.data[pos[hit]]
        return out

    def _column(self, rows: np.ndarray, col: int) -> np.ndarray:
        """``W[rows, col]`` as a dense float64 vector."""
        w = self._weights
        if isinstance(w, np.ndarray):
            return np.asarray(w[rows, col], np.float64)
        return np.asarray(w[rows][:, [col]].toarray()[:, 0], np.float64)

    def _top(
        self,
        rows: np.ndarray,
        n: int,
        history: sp.csr_matrix | None = None,
        seen: sp.csr_matrix | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per row of ``rows``: the top ``n`` unseen columns (ties by column) and their scores.

        Scores come from ``history``, titles in ``seen`` are excluded (both default to the matrix).
        """
        x = (self.matrix if history is None else history)[rows]
        s = (self.matrix if seen is None else seen)[rows]
        product = x @ self._weights
        scores = np.asarray(product.toarray() if sp.issparse(product) else product, np.float64)
        scores[np.repeat(np.arange(len(rows)), np.diff(s.indptr)), s.indices] = -np.inf
        n = min(n, scores.shape[1])
        out = []
        for line in scores:
            cand = np.flatnonzero(np.isfinite(line))
            if n < len(cand):  # keep every column tied with the n-th, then order exactly
                cut = np.partition(line[cand], len(cand) - n)[len(cand) - n]
                cand = cand[line[cand] >= cut]
            chosen = cand[np.lexsort((cand, -line[cand]))][:n]
            out.append((chosen, line[chosen]))
        return out


def _top_terms(
    seen: np.ndarray, terms: np.ndarray, item_ids: Sequence[str], top: int = 3
) -> list[tuple[str, ...]]:
    """Per column of ``terms`` (history × targets): :func:`ranked`'s ids, for every column at once."""
    n = terms.shape[1]
    order = np.lexsort((np.broadcast_to(seen, (n, len(seen))), -terms.T))[:, :top]
    best = np.take_along_axis(terms.T, order, axis=1)
    return [
        tuple(item_ids[int(seen[k])] for k, v in zip(row, vals, strict=True) if v > 0.0)
        for row, vals in zip(order.tolist(), best.tolist(), strict=True)
    ]


def _write_dir(directory: Path, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> Path:
    """Write ``model.npz`` and ``meta.json`` to a sibling temporary folder, then rename it into place."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    try:
        with (tmp / ARRAYS).open("wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        (tmp / META).write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")
        if directory.exists():
            shutil.rmtree(directory)
        tmp.rename(directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory
