"""How EASE and ItemKNN fit their item×item weights (everything else: :mod:`pipeline.recs.itemitem`).

EASE (Steck 2019) solves a ridge regression of every title on all the others
in closed form: ``P = (XᵀX + λI)⁻¹``, ``B = −P / diag(P)`` with a zero
diagonal. It holds a dense items×items matrix, so memory grows with the
square of the catalogue: ``8 n²`` bytes for the float64 inverse during the
fit (twice that at the peak, with ``XᵀX``) and ``4 n²`` for the float32 ``B``
kept; at 20 000 titles that is 3.2 GB while fitting and 1.6 GB after. Above
``trainer.ease_max_items`` it is refused rather than swapping the host.

ItemKNN is ``implicit``'s ``BM25Recommender`` (its fit, spelled out): BM25-weighted co-occurrence,
the ``trainer.knn_k`` nearest neighbours kept per title (a sparse matrix).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from implicit.nearest_neighbours import ItemItemRecommender, bm25_weight
from threadpoolctl import threadpool_limits

from pipeline.recs.als import TrainingError
from pipeline.recs.itemitem import ItemItemFamily

__all__ = ["EaseFamily", "ItemKnnFamily", "TooManyItems", "ease_weights"]


class TooManyItems(TrainingError):
    """The catalogue is too large for a dense family (EASE); raise ``trainer.ease_max_items`` or use ALS."""

    retryable = False


def ease_weights(matrix: sp.csr_matrix, lam: float) -> np.ndarray:
    """EASE's ``B`` (float32, zero diagonal) for a users×items matrix and L2 penalty ``lam``."""
    gram = np.asarray((matrix.T @ matrix).toarray(), np.float64)
    gram[np.diag_indices_from(gram)] += lam
    # XᵀX + λI is symmetric positive definite: a Cholesky inverse costs about half of LU's
    factor, info = scipy.linalg.lapack.dpotrf(gram, lower=False, overwrite_a=True)
    if info == 0:
        inverse, info = scipy.linalg.lapack.dpotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise TrainingError(f"EASE: XᵀX + λI is not positive definite (LAPACK info {info})")
    inverse = np.triu(inverse) + np.triu(inverse, 1).T
    weights = inverse / -np.diag(inverse)
    np.fill_diagonal(weights, 0.0)
    result: np.ndarray = weights.astype(np.float32)
    return result


class EaseFamily(ItemItemFamily):
    """EASE: a dense item×item ridge regression; strong on small catalogues, refused on large ones."""

    name = "ease"

    def _fit_weights(self, matrix: sp.csr_matrix) -> np.ndarray:
        limit = self.settings.ease_max_items
        if matrix.shape[1] > limit:
            raise TooManyItems(f"EASE holds an items×items matrix; {matrix.shape[1]} titles > {limit}")
        return ease_weights(matrix, self.settings.ease_lambda)


class ItemKnnFamily(ItemItemFamily):
    """ItemKNN on BM25-weighted co-occurrence (``implicit``'s ``BM25Recommender``)."""

    name = "itemknn"

    def _fit_weights(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        s = self.settings
        knn = ItemItemRecommender(K=s.knn_k, num_threads=s.threads)
        # BM25Recommender.fit, but handing on CSR: implicit 0.7 passes its own
        # bm25_weight's COO on and warns (ParameterWarning) about converting it
        weighted = sp.csr_matrix(bm25_weight(matrix.T, K1=s.bm25_k1, B=s.bm25_b).T)
        with threadpool_limits(1, "blas"):
            knn.fit(weighted, show_progress=False)
        similarity: sp.csr_matrix = sp.csr_matrix(knn.similarity, dtype=np.float32)
        similarity.sort_indices()
        return similarity
