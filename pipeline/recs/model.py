"""A trained ALS model: factors, id maps, the matrix it saw, and what it recommends.

:func:`pipeline.recs.train` builds one; :func:`pipeline.recs.artefact.load_model` reads one back.
Everything a published recommendation needs is here: top-N without titles the
viewer already watched, "because you watched" reasons, the ``limited`` list
(recent history only), fold-in of a viewer's new history without a retrain,
erasure of a viewer, and the non-personal popular list.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from implicit.als import AlternatingLeastSquares
from implicit.cpu.topk import topk
from threadpoolctl import threadpool_limits

from pipeline.recs import _rows
from pipeline.recs.explain import contributions, top_reasons
from pipeline.recs.records import record_rows
from pipeline.recs.types import PopularItem, Recommendation, UserRecs
from pipeline.settings import TrainerSettings

__all__ = ["DEFAULT_RECENT_DAYS", "Model", "new_version"]

DEFAULT_RECENT_DAYS = 30
"""History kept for the ``limited`` list; the trainer passes ``serving.limited_recent_days``."""

_FILTERED = -1e38
"""``topk`` scores filtered items at ``-FLT_MAX``; anything below this is not a result."""
_BATCH = 2048


def new_version(trained_at_ms: int) -> str:
    """``YYYYMMDDTHHMMSSZ-<6 hex>``: sortable by training time, unique by the suffix."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(trained_at_ms / 1000))
    return f"{stamp}-{secrets.token_hex(3)}"


class Model:
    """User and item factors with their id maps and the training matrix.

    ``matrix`` is the users×items float32 confidence matrix the factors were
    fitted on (rows align with ``user_ids``, columns with ``item_ids``);
    ``last_seen`` holds the epoch-ms newest window end of each stored entry,
    aligned with ``matrix.data`` (``None`` when trained from a bare matrix:
    then there is no ``limited`` list).
    """

    def __init__(
        self,
        *,
        user_factors: np.ndarray,
        item_factors: np.ndarray,
        user_ids: Sequence[str],
        item_ids: Sequence[str],
        matrix: sp.csr_matrix,
        last_seen: np.ndarray | None,
        settings: TrainerSettings,
        version: str | None = None,
        trained_at: int | None = None,
        n_interactions: int | None = None,
        metrics: Mapping[str, Any] | None = None,
        bm25_norm: np.ndarray | None = None,
    ) -> None:
        if user_factors.shape[0] != len(user_ids) or matrix.shape != (len(user_ids), len(item_ids)):
            raise ValueError("factors, ids and matrix disagree on the number of users or items")
        self.user_factors = np.ascontiguousarray(user_factors, np.float32)
        self.item_factors = np.ascontiguousarray(item_factors, np.float32)
        self.user_ids: list[str] = list(user_ids)
        self.item_ids: list[str] = list(item_ids)
        self._user_index = {u: i for i, u in enumerate(self.user_ids)}
        self._item_index = {c: i for i, c in enumerate(self.item_ids)}
        self.matrix: sp.csr_matrix = matrix.astype(np.float32)
        if not self.matrix.has_sorted_indices:
            if last_seen is not None:  # sorting would break the alignment with last_seen
                raise ValueError("matrix columns must be sorted within rows when last_seen is given")
            self.matrix.sort_indices()
        self.last_seen = None if last_seen is None else np.asarray(last_seen, np.int64)
        self.settings = settings
        self.trained_at = int(time.time() * 1000) if trained_at is None else trained_at
        self.version = version or new_version(self.trained_at)
        self.n_interactions = int(matrix.nnz if n_interactions is None else n_interactions)
        self.metrics: dict[str, Any] = dict(metrics or {})
        self.bm25_norm = None if bm25_norm is None else np.asarray(bm25_norm, np.float64)
        """Per-title BM25 length norm of the training matrix (``bm25`` weighting only), for fold-in."""
        self._yty_cache: np.ndarray | None = None
        self._als_model: Any = None

    # -- facts -------------------------------------------------------------

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __contains__(self, pseudonym: object) -> bool:
        return pseudonym in self._user_index

    def meta(self) -> dict[str, Any]:
        """JSON-ready metadata: version, training time, sizes, settings, metrics."""
        return {
            "version": self.version,
            "trained_at": self.trained_at,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "n_interactions": self.n_interactions,
            "settings": self.settings.model_dump(mode="json"),
            "metrics": self.metrics,
        }

    # -- recommendations ---------------------------------------------------

    def recommend(self, pseudonym: str, n: int = 10, *, explain: bool = True) -> list[Recommendation]:
        """Top ``n`` titles the user has not watched; ``[]`` for a user the model does not know."""
        row = self._user_index.get(pseudonym)
        if row is None:
            return []
        ids, scores = self._topk(self.user_factors[row : row + 1], self.matrix[row], n)
        with threadpool_limits(1, "blas"):
            return self._recs(_row(self.matrix, row), ids[0], scores[0], explain)

    def recommend_ids(self, pseudonyms: Iterable[str], n: int = 10) -> dict[str, list[str]]:
        """Top ``n`` content ids per known user, without explanations (fast; used by evaluation)."""
        rows = np.asarray([self._user_index[p] for p in pseudonyms if p in self._user_index], np.int64)
        out: dict[str, list[str]] = {}
        for start in range(0, len(rows), _BATCH):
            chunk = rows[start : start + _BATCH]
            ids, scores = self._topk(self.user_factors[chunk], self.matrix[chunk], n)
            for r, row_ids, row_scores in zip(chunk.tolist(), ids, scores, strict=True):
                out[self.user_ids[r]] = [self.item_ids[i] for i in row_ids[row_scores > _FILTERED]]
        return out

    def recommend_all(
        self, n: int | None = None, *, recent_days: float | None = DEFAULT_RECENT_DAYS, explain: bool = True
    ) -> dict[str, UserRecs]:
        """:class:`UserRecs` for every user: ``full`` and the recent-history ``limited`` list.

        ``limited`` comes from a user vector recomputed on the titles seen within
        ``recent_days`` of the user's newest interaction; unwatched titles only,
        explained by recent titles only. It equals ``full`` when all history is
        recent, and is empty when ``recent_days`` is ``None`` or the model has no
        ``last_seen`` times.
        """
        n = self.settings.top_n if n is None else n
        recent = None
        if recent_days is not None and self.last_seen is not None:
            recent = _rows.recent_rows(self.matrix, self.last_seen, recent_days)
        out: dict[str, UserRecs] = {}
        with threadpool_limits(1, "blas"):
            for start in range(0, self.n_users, _BATCH):
                out.update(self._recommend_batch(start, n, recent, explain))
        return out

    def _recommend_batch(
        self, start: int, n: int, recent: sp.csr_matrix | None, explain: bool
    ) -> dict[str, UserRecs]:
        """``recommend_all`` for users ``start`` .. ``start + _BATCH``."""
        stop = min(start + _BATCH, self.n_users)
        seen = self.matrix[start:stop]
        ids, scores = self._topk(self.user_factors[start:stop], seen, n)
        lim: dict[int, list[Recommendation]] = {}
        if recent is not None:
            part = recent[start:stop]
            shrunk = np.flatnonzero(np.diff(part.indptr) < np.diff(seen.indptr)).tolist()
            if shrunk:
                part = part[shrunk]
                vectors = self._als().recalculate_user(np.arange(len(shrunk)), part)
                lim_ids, lim_scores = self._topk(vectors, seen[shrunk], n)
                for k, r in enumerate(shrunk):
                    lim[r] = self._recs(_row(part, k), lim_ids[k], lim_scores[k], explain)
        out: dict[str, UserRecs] = {}
        for r in range(stop - start):
            full = self._recs(_row(seen, r), ids[r], scores[r], explain)
            limited = lim.get(r, full) if recent is not None else []
            out[self.user_ids[start + r]] = UserRecs(full=full, limited=limited)
        return out

    def popular(self, n: int = 100, *, min_users: int = 1) -> list[PopularItem]:
        """Titles watched by the most distinct users (score = that count); no per-user data.

        ``min_users`` drops titles seen by fewer viewers than that.
        """
        counts = np.bincount(self.matrix.indices, minlength=self.n_items)
        order = np.lexsort((np.arange(self.n_items), -counts))[:n]
        return [
            PopularItem(content_id=self.item_ids[i], score=float(counts[i]))
            for i in order.tolist()
            if counts[i] >= max(min_users, 1)
        ]

    # -- updates -----------------------------------------------------------

    def fold_in(self, pseudonym: str, rows: Iterable[Mapping[str, Any] | Any]) -> int:
        """Refit one user's vector on their history ``rows``, keeping item factors fixed.

        ``rows`` are the user's **complete** current ``interaction.v1`` windows
        (e.g. ``store.records(pseudonym)`` after adding the new ones); they replace
        what the model held for the user. A new user is added. Titles the model
        has no factors for are ignored until the next full retrain. Returns how
        many known titles the vector was fitted on (``0``: nothing changed).
        """
        return self.fold_in_many({pseudonym: rows})[pseudonym]

    def fold_in_many(self, histories: Mapping[str, Iterable[Mapping[str, Any] | Any]]) -> dict[str, int]:
        """:meth:`fold_in` for several users with one matrix rebuild; known titles per user."""
        updates, result, new_users = record_rows(
            histories, self._item_index, self._user_index, self.n_users, self.settings, self.bm25_norm
        )
        self._apply_rows(updates, new_users)
        return result

    def fold_in_confidence(self, histories: Mapping[str, Mapping[str, float]]) -> dict[str, int]:
        """:meth:`fold_in_many` from ready confidences: ``{pseudonym: {content_id: confidence}}``.

        The seam of :mod:`pipeline.recs.family` folds in this way, so that every
        family takes the same input; unknown titles are ignored. The entries'
        ``last_seen`` is now (they are the user's newest history).
        """
        updates, result, new_users = _rows.history_rows(
            histories, self._item_index, self._user_index, self.n_users, int(time.time() * 1000)
        )
        self._apply_rows(updates, new_users)
        return result

    def _apply_rows(self, updates: dict[int, _rows.RowData], new_users: list[str]) -> None:
        """Replace (or append, for ``new_users``) matrix rows and refit those users' vectors."""
        if not updates:
            return
        n_rows = self.n_users + len(new_users)
        last_seen = self.last_seen if self.last_seen is not None else np.zeros(self.matrix.nnz, np.int64)
        self.matrix, last_seen = _rows.replace_rows(self.matrix, last_seen, updates, n_rows)
        if self.last_seen is not None:
            self.last_seen = last_seen
        for pseudonym in new_users:
            self._user_index[pseudonym] = len(self.user_ids)
            self.user_ids.append(pseudonym)
        changed = np.fromiter(updates, np.int64, len(updates))
        vectors = self._als().recalculate_user(np.arange(len(changed)), self.matrix[changed])
        grown = np.zeros((n_rows, self.user_factors.shape[1]), np.float32)
        grown[: len(self.user_factors)] = self.user_factors
        grown[changed] = vectors
        self._set_user_factors(grown)

    def remove_user(self, pseudonym: str) -> bool:
        """Erase a user: factors row, matrix row and id; ``False`` if the model did not know them."""
        return self.remove_users((pseudonym,)) == 1

    def remove_users(self, pseudonyms: Iterable[str]) -> int:
        """Erase several users with one rebuild; returns how many the model knew."""
        rows = sorted({self._user_index[p] for p in pseudonyms if p in self._user_index})
        if not rows:
            return 0
        drop = np.asarray(rows, np.int64)
        last_seen = self.last_seen if self.last_seen is not None else np.zeros(self.matrix.nnz, np.int64)
        self.matrix, last_seen = _rows.drop_rows(self.matrix, last_seen, drop)
        if self.last_seen is not None:
            self.last_seen = last_seen
        self._set_user_factors(np.delete(self.user_factors, drop, axis=0))
        gone = set(rows)
        self.user_ids = [u for i, u in enumerate(self.user_ids) if i not in gone]
        self._user_index = {u: i for i, u in enumerate(self.user_ids)}
        return len(rows)

    # -- internals ---------------------------------------------------------

    def _als(self) -> Any:
        """An ``implicit`` ALS object sharing our factors (for ``recalculate_user``)."""
        if self._als_model is None:
            s = self.settings
            with threadpool_limits(1, "blas"):
                als = AlternatingLeastSquares(
                    factors=self.item_factors.shape[1],
                    regularization=s.regularization,
                    alpha=1.0,
                    iterations=s.iterations,
                    num_threads=s.threads,
                    random_state=s.seed,
                    use_gpu=False,
                )
            als.item_factors = self.item_factors
            als.user_factors = self.user_factors
            self._als_model = als
        return self._als_model

    @property
    def _yty(self) -> np.ndarray:
        """``Yᵀ Y`` (float64) of the item factors, for explanations; computed on first use."""
        if self._yty_cache is None:
            item = self.item_factors.astype(np.float64)
            self._yty_cache = item.T @ item
        return self._yty_cache

    def _set_user_factors(self, factors: np.ndarray) -> None:
        self.user_factors = np.ascontiguousarray(factors, np.float32)
        if self._als_model is not None:
            self._als_model.user_factors = self.user_factors
            self._als_model._XtX = None  # cached Xᵀ X of the old user factors
            self._als_model._user_norms = None

    def _topk(self, vectors: np.ndarray, seen: sp.csr_matrix, n: int) -> tuple[np.ndarray, np.ndarray]:
        n = min(n, self.n_items)
        if n <= 0 or len(vectors) == 0:
            return np.empty((len(vectors), 0), np.int32), np.empty((len(vectors), 0), np.float32)
        ids, scores = topk(
            self.item_factors,
            np.ascontiguousarray(vectors, np.float32),
            n,
            filter_query_items=seen,
            num_threads=self.settings.threads,
        )
        return ids, scores

    def _recs(
        self, history: tuple[np.ndarray, np.ndarray], ids: np.ndarray, scores: np.ndarray, explain: bool
    ) -> list[Recommendation]:
        """Recommendations from top-k output; ``history`` = the (columns, confidence) explaining them."""
        valid = scores > _FILTERED
        ids, scores = ids[valid], scores[valid]
        seen, conf = history
        if not explain or len(ids) == 0 or len(seen) == 0:
            reasons: list[tuple[str, ...]] = [() for _ in ids]
        else:
            contrib = contributions(
                self.item_factors, self._yty, self.settings.regularization, seen, conf, ids
            )
            reasons = top_reasons(contrib, seen, self.item_ids)
        return [
            Recommendation(content_id=self.item_ids[i], score=float(s), because=b)
            for i, s, b in zip(ids.tolist(), scores.tolist(), reasons, strict=True)
        ]


def _row(matrix: sp.csr_matrix, r: int) -> tuple[np.ndarray, np.ndarray]:
    """``(columns, values)`` of CSR row ``r`` without building a sparse row object."""
    lo, hi = matrix.indptr[r], matrix.indptr[r + 1]
    return matrix.indices[lo:hi], matrix.data[lo:hi]
