"""Retrieval metrics for ±1 codes: mAP, precision@k and PR curves, tie-aware.

Definitions are those of DESIGN.md §4. A query q ranks the database by the
Hamming distance d_H(b, c) = (K - <b, c>)/2; a database item is *relevant*
when it has the query's label (0 NC, 1 MCI, 2 AD).

The one idea behind every function here: a Hamming distance takes only the
K + 1 values 0..K. So a query's whole ranking is summarised, up to the order
inside groups of tied items, by two histograms over distances,

    n_g = number of database items at distance g,
    r_g = number of *relevant* items at distance g,          g = 0..K,

and every metric is a short sum over the K + 1 groups. Computing the
histograms is one pass over the distances with ``np.bincount``: O(N) per
query and no sort, where the usual implementation sorts the database for
every query, O(N log N). :func:`hamming_histograms` computes them from uint8
distances, a block of a few MB of queries at a time, so no (Q, N) int64
array is ever built.

Inside a tie group the order is arbitrary. ``ties="expected"`` (the default)
returns the exact expectation under a uniformly random order inside every
group (McSherry & Najork, 2008): for a group of n items, r relevant, after
N_b items of which R_b are relevant, the expected sum of precisions at its
relevant items, over its first m positions, is

    (r/n) Σ_{j=1..m} [R_b + 1 + (j-1)(r-1)/(n-1)] / (N_b + j)
  = (r/n) [ (R_b + 1) ΔH + (r-1)/(n-1) (m - (N_b + 1) ΔH) ],

with ΔH = H(N_b + m) - H(N_b) a difference of harmonic numbers
(:func:`expected_average_precision`). ``ties="index"`` ranks ties by database
index, as most public code does (it depends on how the database happens to
be ordered); it needs the actual order, so it sorts.

Graded relevance (:func:`severity_relevance`, same diagnosis weighted by
closeness in disease severity) is scored by :func:`ndcg_at_k`, whose
expected-ties form needs, besides n_g, the *sum of relevance* at each
distance: the items of a tie group share its mean gain.

Every function takes numpy arrays or torch tensors. A single query may be
given as one code of shape (K,) and one label.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.special import digamma

from neurohash_lite.retrieval import (
    _as_code_array,
    _pack_checked,
    _to_numpy,
    packed_hamming_distance,
    sign_codes,
)

__all__ = [
    "TIES",
    "AVERAGES",
    "sign_codes",
    "hamming_distance",
    "hamming_histograms",
    "expected_average_precision",
    "expected_relevant_in_top_k",
    "AveragePrecisionReport",
    "average_precision_per_query",
    "mean_average_precision",
    "precision_at_k",
    "pr_curve_ranking",
    "pr_curve_hamming_radius",
    "pr_from_histograms",
    "severity_relevance",
    "NDCGReport",
    "ndcg_at_k",
]

#: How items at equal distance are ordered.
TIES = ("expected", "index")
#: How PR counts are pooled over queries.
AVERAGES = ("micro", "macro")

# Distances per block of queries: the only array whose size grows with the
# database, and it stays a few MB.
_BLOCK_ELEMENTS = 1 << 18
# Below this many distances a plain bincount beats counting them in pairs.
_PAIR_COUNT_MIN = 1 << 15


# --------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class _Problem:
    """Checked inputs: packed codes and int64 labels."""

    query_packed: np.ndarray   # (Q, B) uint8
    db_packed: np.ndarray      # (N, B) uint8
    query_labels: np.ndarray   # (Q,) int64
    db_labels: np.ndarray      # (N,) int64
    n_bits: int


def _check_labels(labels, name: str, n_codes: int, codes_name: str) -> np.ndarray:
    array = np.atleast_1d(_to_numpy(labels))
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be one integer label per code, shape ({n_codes},); got shape "
            f"{array.shape} (for one-hot labels pass labels.argmax(1))"
        )
    if len(array) != n_codes:
        raise ValueError(f"{name} has {len(array)} labels but {codes_name} has {n_codes} codes")
    if array.dtype.kind in "biu":
        return array.astype(np.int64, copy=False)
    if array.dtype.kind == "f" and np.isfinite(array).all() and (array == np.round(array)).all():
        return array.astype(np.int64)
    raise ValueError(f"{name} must hold integer labels (0 NC, 1 MCI, 2 AD); got dtype {array.dtype}")


def _check_pair(query_codes, db_codes) -> tuple[np.ndarray, np.ndarray, int]:
    """Check and pack query and database codes of one length K; return both and K."""
    queries = _as_code_array(query_codes, "query_codes", allow_single=True)
    database = _as_code_array(db_codes, "db_codes")
    if queries.shape[1] != database.shape[1]:
        raise ValueError(
            f"query_codes have K = {queries.shape[1]} bits but db_codes have K = "
            f"{database.shape[1]}: both must have the same code length"
        )
    return _pack_checked(queries, "query_codes"), _pack_checked(database, "db_codes"), queries.shape[1]


def _prepare(query_codes, db_codes, query_labels, db_labels) -> _Problem:
    query_packed, db_packed, n_bits = _check_pair(query_codes, db_codes)
    return _Problem(
        query_packed=query_packed,
        db_packed=db_packed,
        query_labels=_check_labels(query_labels, "query_labels", len(query_packed), "query_codes"),
        db_labels=_check_labels(db_labels, "db_labels", len(db_packed), "db_codes"),
        n_bits=n_bits,
    )


def _check_ties(ties: str) -> None:
    if ties not in TIES:
        raise ValueError(f"ties={ties!r} must be one of {TIES}")


def _check_ks(ks, n_db: int) -> np.ndarray:
    array = np.atleast_1d(_to_numpy(ks))
    if array.ndim != 1 or len(array) == 0 or array.dtype.kind not in "iu":
        raise ValueError(f"ks must be a non-empty 1-D sequence of integers; got {ks!r}")
    if array.min() < 1 or array.max() > n_db:
        raise ValueError(f"ks must lie in 1..{n_db} (the database size); got {ks!r}")
    return array.astype(np.int64)


# --------------------------------------------------------------------------
# Distances and histograms
# --------------------------------------------------------------------------
def hamming_distance(query_codes, db_codes, *, backend: str = "auto", out=None) -> np.ndarray:
    """Hamming distances d_H(b, c) = (K - <b, c>)/2 between ±1 codes.

    Parameters
    ----------
    query_codes : array_like or torch.Tensor, shape (Q, K) or (K,)
        ±1 query codes.
    db_codes : array_like or torch.Tensor, shape (N, K)
        ±1 database codes.
    backend : {"auto", "numpy", "faiss", "torch"}
        Bit-counting kernel (:func:`neurohash_lite.retrieval.packed_hamming_distance`);
        every backend returns the same integers.
    out : numpy.ndarray, shape (Q, N) (or (N,) for one query), optional
        An integer array to write the distances into, reused over calls
        (see :func:`~neurohash_lite.retrieval.packed_hamming_distance`).

    Returns
    -------
    numpy.ndarray, shape (Q, N) (or (N,) for one query of shape (K,))
        Distances in 0..K, in the smallest unsigned dtype that holds K
        (uint8 up to K = 255), or ``out`` when given. Cast to a signed type
        before subtracting them.

    Raises
    ------
    ValueError
        If either input is not ±1, is empty, or the code lengths differ, or
        ``out`` has the wrong shape or a dtype that does not hold 0..K.

    References
    ----------
    DESIGN.md §4 (d_H from the inner product of ±1 codes).
    """
    single = np.ndim(query_codes) == 1
    query_packed, db_packed, n_bits = _check_pair(query_codes, db_codes)
    one_row = single and isinstance(out, np.ndarray) and out.ndim == 1
    distances = packed_hamming_distance(query_packed, db_packed, n_bits, backend,
                                        out=out[None, :] if one_row else out)
    if out is not None:
        return out
    return distances[0] if single else distances


def _count_distances(distances: np.ndarray, bins: int) -> np.ndarray:
    """Histogram (bins,) int64 of a 1-D array of distances.

    ``np.bincount``, except that a long uint8 array is viewed as uint16 so
    that each count handles two distances at once: the pair (d1, d2) lands
    in bin d1 + 256 d2, and summing the pair histogram over either index
    gives back the counts of d1 and of d2. Half the elements to count makes
    it about twice as fast (K ≤ 255 keeps d1 + 256 d2 below 256 (K + 1)).
    """
    if distances.dtype != np.uint8 or len(distances) < _PAIR_COUNT_MIN:
        return np.bincount(distances, minlength=bins)
    counts = np.zeros(bins, dtype=np.int64)
    if distances.__array_interface__["data"][0] % 2:   # uint16 needs an even start address
        counts[distances[0]] += 1
        distances = distances[1:]
    if len(distances) % 2:
        counts[distances[-1]] += 1
        distances = distances[:-1]
    pairs = np.bincount(distances.view(np.uint16), minlength=256 * bins).reshape(bins, 256)[:, :bins]
    return counts + pairs.sum(axis=0) + pairs.sum(axis=1)


def _sort_by_label(labels: np.ndarray):
    """Stable order that groups equal labels, the labels present, and their counts.

    Small non-negative label ranges (the usual case) go through a radix sort
    of a uint8/uint16 copy; anything else through ``np.unique``.
    """
    low, high = int(labels.min()), int(labels.max())
    if high - low < 1 << 16:
        offset = (labels - low).astype(np.min_scalar_type(high - low))
        counts = np.bincount(offset)
        present = np.flatnonzero(counts)
        return np.argsort(offset, kind="stable"), present + low, counts[present]
    classes, sizes = np.unique(labels, return_counts=True)
    return np.argsort(labels, kind="stable"), classes, sizes


def _histograms(problem: _Problem, backend: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-query histograms of relevant and all database items per distance.

    The database is reordered by label once, so that each label's items are
    one contiguous block of columns. For every query, the histogram of each
    label block is then one count over a slice of its distance row: the
    query's own label gives ``relevant``, the sum over labels ``total``.
    """
    n_bits, n_query, n_db = problem.n_bits, len(problem.query_labels), len(problem.db_labels)
    bins = n_bits + 1
    order, classes, class_sizes = _sort_by_label(problem.db_labels)
    db_packed = problem.db_packed[order]
    bounds = np.concatenate([[0], np.cumsum(class_sizes)])
    query_class = np.searchsorted(classes, problem.query_labels)
    has_class = query_class < len(classes)
    has_class[has_class] = classes[query_class[has_class]] == problem.query_labels[has_class]

    relevant = np.zeros((n_query, bins), dtype=np.int64)
    total = np.zeros((n_query, bins), dtype=np.int64)
    rows = max(1, min(n_query, _BLOCK_ELEMENTS // n_db))
    for start in range(0, n_query, rows):
        stop = min(n_query, start + rows)
        distances = packed_hamming_distance(problem.query_packed[start:stop], db_packed, n_bits, backend)
        for q, row in enumerate(distances, start=start):
            for c in range(len(classes)):
                counts = _count_distances(row[bounds[c]:bounds[c + 1]], bins)
                total[q] += counts
                if has_class[q] and query_class[q] == c:
                    relevant[q] = counts
    return relevant, total


def hamming_histograms(query_codes, db_codes, query_labels, db_labels, *,
                       backend: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Per query, how many database items (relevant, and all) lie at each distance.

    Parameters
    ----------
    query_codes : array_like or torch.Tensor, shape (Q, K) or (K,)
        ±1 query codes.
    db_codes : array_like or torch.Tensor, shape (N, K)
        ±1 database codes.
    query_labels : array_like, shape (Q,) (or a scalar for one query), int
    db_labels : array_like, shape (N,), int
        Relevant means equal labels.
    backend : {"auto", "numpy", "faiss", "torch"}
        Distance kernel.

    Returns
    -------
    relevant : numpy.ndarray, shape (Q, K + 1), int64
        ``relevant[q, g]`` = r_g, the relevant items at distance g from query q.
    total : numpy.ndarray, shape (Q, K + 1), int64
        ``total[q, g]`` = n_g, all items at distance g. Each row sums to N.

    References
    ----------
    McSherry & Najork (2008): a ranking with ties is summarised by its tie
    groups; with Hamming distances the groups are the K + 1 distances.
    """
    problem = _prepare(query_codes, db_codes, query_labels, db_labels)
    return _histograms(problem, backend)


# --------------------------------------------------------------------------
# Metrics from histograms (the expected-ties formulas)
# --------------------------------------------------------------------------
def _group_positions(relevant: np.ndarray, total: np.ndarray, k):
    """r_g, n_g, R_b, N_b and m_g (positions of group g within the top k) as float64."""
    r = np.asarray(relevant, dtype=np.float64)
    n = np.asarray(total, dtype=np.float64)
    n_before = np.cumsum(n, axis=-1) - n
    r_before = np.cumsum(r, axis=-1) - r
    m = n if k is None else np.clip(k - n_before, 0.0, n)
    return r, n, r_before, n_before, m


def expected_average_precision(relevant, total, top_k: int | None = None) -> np.ndarray:
    """Expected AP (or AP@k) per query under a random order inside tie groups.

    Parameters
    ----------
    relevant, total : array_like, shape (Q, K + 1), int
        Histograms from :func:`hamming_histograms` (r_g and n_g).
    top_k : int, optional
        Score only the first k ranks and divide by min(R_q, k); all ranks when None.

    Returns
    -------
    numpy.ndarray, shape (Q,), float64
        E[AP_q]; NaN for a query with no relevant item (R_q = 0).

    Notes
    -----
    Group g holds n_g items, r_g relevant, after N_b items of which R_b are
    relevant, and m_g of its positions fall in the top k (all n_g without
    top_k). A relevant item at position j of the group has precision
    (R_b + 1 + X)/(N_b + j), X the relevant items before it in the group;
    under a uniformly random order P(position j relevant) = r/n and
    E[X | j relevant] = (j - 1)(r - 1)/(n - 1). Summing over j = 1..m with
    Σ 1/(N_b + j) = ΔH = H(N_b + m) - H(N_b) and
    Σ (j - 1)/(N_b + j) = m - (N_b + 1) ΔH gives

        E[group] = (r/n) [ (R_b + 1) ΔH + (r - 1)/(n - 1) (m - (N_b + 1) ΔH) ],

    and E[AP_q] = Σ_g E[group] / min(R_q, k). Harmonic numbers come from the
    digamma function, H(x) = ψ(x + 1) + γ. Without ties (every n = 1) this is
    the ordinary AP.

    References
    ----------
    McSherry & Najork (2008), tie-aware average precision; DESIGN.md §4.
    """
    r, n, r_before, n_before, m = _group_positions(relevant, total, top_k)
    delta_h = digamma(n_before + m + 1.0) - digamma(n_before + 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(n > 0, r / np.maximum(n, 1.0), 0.0)
        pair = np.where(n > 1, (r - 1.0) / (n - 1.0), 0.0)
    group = share * ((r_before + 1.0) * delta_h + pair * (m - (n_before + 1.0) * delta_h))
    n_relevant = r.sum(axis=-1)
    norm = n_relevant if top_k is None else np.minimum(n_relevant, float(top_k))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_relevant > 0, group.sum(axis=-1) / norm, np.nan)


def expected_relevant_in_top_k(relevant, total, k: int) -> np.ndarray:
    """Expected number of relevant items among the first k ranks.

    The groups wholly inside the top k count all their r_g; the group that
    straddles rank k counts r_g (k - N_b)/n_g, its expectation under a random
    order inside the group.

    Parameters
    ----------
    relevant, total : array_like, shape (Q, K + 1), int
        Histograms from :func:`hamming_histograms`.
    k : int
        Number of ranks, 1 ≤ k ≤ N.

    Returns
    -------
    numpy.ndarray, shape (Q,), float64

    References
    ----------
    DESIGN.md §4 (precision@k with ties).
    """
    r, n, _, _, m = _group_positions(relevant, total, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, r * m / np.maximum(n, 1.0), 0.0).sum(axis=-1)


# --------------------------------------------------------------------------
# Ties by database index: the literal ranking
# --------------------------------------------------------------------------
def _ranked_relevance(problem: _Problem, backend: str):
    """Yield (query index, relevance in ranked order) with ties ranked by index.

    The ranking is a stable argsort of the distances (a radix sort for
    uint8/uint16 distances), one query at a time.
    """
    classes, db_class = np.unique(problem.db_labels, return_inverse=True)
    db_class = db_class.astype(np.min_scalar_type(len(classes)))
    query_class = np.searchsorted(classes, problem.query_labels)
    n_query, n_db = len(problem.query_labels), len(problem.db_labels)
    rows = max(1, min(n_query, _BLOCK_ELEMENTS // n_db))
    for start in range(0, n_query, rows):
        stop = min(n_query, start + rows)
        distances = packed_hamming_distance(
            problem.query_packed[start:stop], problem.db_packed, problem.n_bits, backend
        )
        for i, row in enumerate(distances):
            q = start + i
            order = np.argsort(row, kind="stable")
            if query_class[q] < len(classes) and classes[query_class[q]] == problem.query_labels[q]:
                yield q, db_class[order] == query_class[q]
            else:
                yield q, np.zeros(n_db, dtype=bool)


def _index_average_precision(ranked: np.ndarray, top_k: int | None) -> float:
    """AP (or AP@k) of one ranked relevance vector, literally."""
    n_relevant = int(ranked.sum())
    if n_relevant == 0:
        return np.nan
    ranks = np.flatnonzero(ranked if top_k is None else ranked[:top_k]) + 1.0
    norm = n_relevant if top_k is None else min(n_relevant, top_k)
    return float(np.sum(np.arange(1, len(ranks) + 1) / ranks) / norm)


# --------------------------------------------------------------------------
# mAP
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class AveragePrecisionReport:
    """Per-query average precision and the queries left out of the mean.

    Attributes
    ----------
    ap : numpy.ndarray, shape (Q,), float64
        AP_q (AP@k when ``top_k`` is set); NaN for a skipped query.
    n_relevant : numpy.ndarray, shape (Q,), int64
        R_q, the relevant database items of each query.
    top_k : int or None
    ties : str
    """

    ap: np.ndarray
    n_relevant: np.ndarray
    top_k: int | None
    ties: str

    @property
    def skipped(self) -> np.ndarray:
        """Boolean mask (Q,) of queries with no relevant item (R_q = 0)."""
        return self.n_relevant == 0

    @property
    def n_skipped(self) -> int:
        """How many queries had no relevant item and were left out of the mean."""
        return int(self.skipped.sum())

    @property
    def mean_ap(self) -> float:
        """mAP over the queries that have a relevant item (NaN, with a warning, if none)."""
        kept = self.ap[~self.skipped]
        if len(kept) == 0:
            warnings.warn("no query has a relevant item in the database; mAP is NaN",
                          RuntimeWarning, stacklevel=2)
            return float("nan")
        return float(kept.mean())


def average_precision_per_query(query_codes, db_codes, query_labels, db_labels,
                                top_k: int | None = None, ties: str = "expected", *,
                                backend: str = "auto") -> AveragePrecisionReport:
    """AP of every query, with the count of queries that had nothing to find.

    Parameters are those of :func:`mean_average_precision`.

    Returns
    -------
    AveragePrecisionReport
        ``.ap`` per query, ``.n_relevant``, ``.n_skipped`` and ``.mean_ap``.

    References
    ----------
    DESIGN.md §4; McSherry & Najork (2008) for ``ties="expected"``.
    """
    _check_ties(ties)
    if top_k is not None and (int(top_k) != top_k or top_k < 1):
        raise ValueError(f"top_k={top_k!r} must be a positive integer or None")
    top_k = None if top_k is None else int(top_k)
    problem = _prepare(query_codes, db_codes, query_labels, db_labels)
    if ties == "expected":
        relevant, total = _histograms(problem, backend)
        ap = expected_average_precision(relevant, total, top_k)
        n_relevant = relevant.sum(axis=1)
    else:
        ap = np.empty(len(problem.query_labels))
        n_relevant = np.empty(len(problem.query_labels), dtype=np.int64)
        for q, ranked in _ranked_relevance(problem, backend):
            ap[q] = _index_average_precision(ranked, top_k)
            n_relevant[q] = ranked.sum()
    return AveragePrecisionReport(ap=ap, n_relevant=n_relevant, top_k=top_k, ties=ties)


def mean_average_precision(query_codes, db_codes, query_labels, db_labels,
                           top_k: int | None = None, ties: str = "expected", *,
                           backend: str = "auto") -> float:
    """Mean average precision (mAP@ALL, or mAP@k) of Hamming ranking.

    AP_q = (1/R_q) Σ_n rel_n P@n over the ranked database; with ``top_k``
    the sum stops at rank k and is divided by min(R_q, k), so 1.0 means a
    perfect top k. Queries with no relevant item (R_q = 0) are skipped; see
    :func:`average_precision_per_query` for their count and the per-query APs.

    Parameters
    ----------
    query_codes : array_like or torch.Tensor, shape (Q, K) or (K,)
        ±1 query codes (e.g. MRI codes for M→P).
    db_codes : array_like or torch.Tensor, shape (N, K)
        ±1 database codes (e.g. PET codes for M→P).
    query_labels : array_like, shape (Q,) (or a scalar for one query), int
    db_labels : array_like, shape (N,), int
        Diagnoses (0 NC, 1 MCI, 2 AD); relevant means equal labels.
    top_k : int, optional
        mAP@k. A value above N scores the whole ranking (mAP@ALL).
    ties : {"expected", "index"}
        "expected": the exact expectation under a uniformly random order
        inside each group of equal distances; "index": ties ranked by
        database index, as most public code does.
    backend : {"auto", "numpy", "faiss", "torch"}
        Distance kernel; it does not change the result.

    Returns
    -------
    float
        The mAP, in [0, 1]; NaN (with a RuntimeWarning) if no query has a
        relevant item.

    Raises
    ------
    ValueError
        On codes that are not ±1, different code lengths, label arrays of the
        wrong length or type, an empty input, a bad ``top_k`` or ``ties``.

    References
    ----------
    DESIGN.md §4; McSherry & Najork (2008) for the expected AP under ties.
    """
    report = average_precision_per_query(query_codes, db_codes, query_labels, db_labels,
                                         top_k, ties, backend=backend)
    return report.mean_ap


# --------------------------------------------------------------------------
# Precision@k and PR curves
# --------------------------------------------------------------------------
def _relevant_in_top_ks(problem: _Problem, ks: np.ndarray, ties: str, backend: str):
    """(Q, len(ks)) relevant items within the first k ranks, and R_q (Q,)."""
    n_query = len(problem.query_labels)
    hits = np.empty((n_query, len(ks)), dtype=np.float64)
    if ties == "expected":
        relevant, total = _histograms(problem, backend)
        for j, k in enumerate(ks):
            hits[:, j] = expected_relevant_in_top_k(relevant, total, int(k))
        return hits, relevant.sum(axis=1)
    n_relevant = np.empty(n_query, dtype=np.int64)
    for q, ranked in _ranked_relevance(problem, backend):
        cumulative = np.cumsum(ranked, dtype=np.int64)
        hits[q] = cumulative[ks - 1]
        n_relevant[q] = cumulative[-1]
    return hits, n_relevant


def precision_at_k(query_codes, db_codes, query_labels, db_labels, ks,
                   ties: str = "expected", *, backend: str = "auto") -> np.ndarray:
    """Mean precision in the first k ranks, for each k in ``ks``.

    P@k = (relevant items in the top k)/k, averaged over all queries (a
    query with no relevant item scores 0). With ``ties="expected"`` the tie
    group that straddles rank k contributes r_g (k - N_b)/n_g relevant items.

    Parameters
    ----------
    query_codes, db_codes, query_labels, db_labels
        As in :func:`mean_average_precision`.
    ks : int or sequence of int
        Cut-offs, each in 1..N.
    ties : {"expected", "index"}
    backend : {"auto", "numpy", "faiss", "torch"}

    Returns
    -------
    numpy.ndarray, shape (len(ks),), float64

    References
    ----------
    DESIGN.md §4; Wang & Zeng (2023), the precision curves of Figs. 3 and 4.
    """
    _check_ties(ties)
    problem = _prepare(query_codes, db_codes, query_labels, db_labels)
    ks = _check_ks(ks, len(problem.db_labels))
    hits, _ = _relevant_in_top_ks(problem, ks, ties, backend)
    return (hits / ks).mean(axis=0)


def pr_curve_ranking(query_codes, db_codes, query_labels, db_labels, ks=None,
                     ties: str = "expected", *, backend: str = "auto"):
    """Precision and recall of the first k ranks, as k grows.

    Parameters
    ----------
    query_codes, db_codes, query_labels, db_labels
        As in :func:`mean_average_precision`.
    ks : sequence of int, optional
        Cut-offs in 1..N; by default about 100 evenly spaced values from 1 to N.
    ties : {"expected", "index"}
    backend : {"auto", "numpy", "faiss", "torch"}

    Returns
    -------
    ks : numpy.ndarray, shape (P,), int64
    precision : numpy.ndarray, shape (P,), float64
        Mean P@k over all queries.
    recall : numpy.ndarray, shape (P,), float64
        Mean over the queries with R_q > 0 of (relevant in the top k)/R_q
        (NaN if no query has a relevant item).

    References
    ----------
    DESIGN.md §4 (PR by rank); Tao & An (2021), Fig. 3.
    """
    _check_ties(ties)
    problem = _prepare(query_codes, db_codes, query_labels, db_labels)
    n_db = len(problem.db_labels)
    if ks is None:
        ks = np.unique(np.linspace(1, n_db, num=min(n_db, 100)).round().astype(np.int64))
    ks = _check_ks(ks, n_db)
    hits, n_relevant = _relevant_in_top_ks(problem, ks, ties, backend)
    precision = (hits / ks).mean(axis=0)
    has_relevant = n_relevant > 0
    if has_relevant.any():
        recall = (hits[has_relevant] / n_relevant[has_relevant, None]).mean(axis=0)
    else:
        recall = np.full(len(ks), np.nan)
    return ks, precision, recall


def pr_curve_hamming_radius(query_codes, db_codes, query_labels, db_labels,
                            average: str = "micro", *, backend: str = "auto"):
    """Precision and recall of hash lookup: everything within Hamming radius r.

    For r = 0..K, query q retrieves the database items with d_H ≤ r:
    precision = relevant retrieved / retrieved, recall = relevant retrieved / R_q.
    No ranking inside the ball is needed, so ties play no role.

    Parameters
    ----------
    query_codes, db_codes, query_labels, db_labels
        As in :func:`mean_average_precision`; one query of shape (K,) with a
        scalar label gives that query's own curve.
    average : {"micro", "macro"}
        "micro" pools the counts over all queries, then divides (DCMH's
        evaluation code); "macro" averages precision over the queries that
        retrieve something at radius r and recall over the queries with R_q > 0.
    backend : {"auto", "numpy", "faiss", "torch"}

    Returns
    -------
    radii : numpy.ndarray, shape (K + 1,), int64
        0, 1, ..., K.
    precision : numpy.ndarray, shape (K + 1,), float64
        NaN at a radius where nothing at all is retrieved.
    recall : numpy.ndarray, shape (K + 1,), float64
        Ends at 1.0 at r = K (NaN everywhere if no query has a relevant item).

    References
    ----------
    DESIGN.md §4 (PR by Hamming radius); Tao & An (2021), Fig. 3 (PR curves
    from hash lookup).
    """
    if average not in AVERAGES:
        raise ValueError(f"average={average!r} must be one of {AVERAGES}")
    problem = _prepare(query_codes, db_codes, query_labels, db_labels)
    relevant, total = _histograms(problem, backend)
    return pr_from_histograms(relevant, total, average)


def pr_from_histograms(relevant, total, average: str = "micro"):
    """PR by Hamming radius (:func:`pr_curve_hamming_radius`) from per-query histograms.

    Parameters
    ----------
    relevant, total : array_like, shape (Q, K + 1), int
        Histograms from :func:`hamming_histograms`.
    average : {"micro", "macro"}

    Returns
    -------
    radii, precision, recall : numpy.ndarray, shape (K + 1,)
        As :func:`pr_curve_hamming_radius` returns them.
    """
    if average not in AVERAGES:
        raise ValueError(f"average={average!r} must be one of {AVERAGES}")
    relevant, total = np.atleast_2d(relevant), np.atleast_2d(total)
    relevant_within = np.cumsum(relevant, axis=1).astype(np.float64)
    retrieved_within = np.cumsum(total, axis=1).astype(np.float64)
    n_relevant = relevant_within[:, -1]
    radii = np.arange(relevant.shape[1], dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        if average == "micro":
            retrieved = retrieved_within.sum(axis=0)
            precision = np.where(retrieved > 0, relevant_within.sum(axis=0) / retrieved, np.nan)
            recall = relevant_within.sum(axis=0) / n_relevant.sum() if n_relevant.sum() > 0 \
                else np.full(len(radii), np.nan)
        else:
            per_query = np.where(retrieved_within > 0, relevant_within / retrieved_within, np.nan)
            answered = (retrieved_within > 0).sum(axis=0)
            precision = np.where(answered > 0, np.nansum(per_query, axis=0) / np.maximum(answered, 1), np.nan)
            has_relevant = n_relevant > 0
            recall = (relevant_within[has_relevant] / n_relevant[has_relevant, None]).mean(axis=0) \
                if has_relevant.any() else np.full(len(radii), np.nan)
    return radii, precision, recall


# --------------------------------------------------------------------------
# Graded relevance: nDCG@k
# --------------------------------------------------------------------------
def _check_severity(severity, name: str, n_labels: int, labels_name: str) -> np.ndarray:
    array = np.atleast_1d(_to_numpy(severity))
    if array.ndim != 1 or array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be one real severity per subject, shape ({n_labels},); "
                         f"got shape {array.shape}, dtype {array.dtype}")
    if len(array) != n_labels:
        raise ValueError(f"{name} has {len(array)} values but {labels_name} has {n_labels} labels")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        bad = int(np.flatnonzero(~np.isfinite(array))[0])
        raise ValueError(f"{name} must be finite; found {float(array[bad])!r} at index {bad}")
    return array


def _pooled_within_class_sd(severity: np.ndarray, labels: np.ndarray) -> float:
    """sqrt(Σ_c Σ_{i in c} (s_i - s̄_c)² / (N - C)), C the classes present."""
    classes, inverse = np.unique(labels, return_inverse=True)
    dof = len(severity) - len(classes)
    if dof < 1:
        return float("nan")
    means = np.bincount(inverse, weights=severity) / np.bincount(inverse)
    return float(np.sqrt(np.sum((severity - means[inverse]) ** 2) / dof))


def severity_relevance(query_labels, db_labels, query_severity, db_severity,
                       scale: float | None = None) -> np.ndarray:
    """Graded relevance from diagnosis and latent disease severity.

    rel(q, d) = 1[y_q = y_d] · exp(-|s_q - s_d| / scale): a database item
    with the query's diagnosis *and* its severity has relevance 1, one with
    the same diagnosis further away in severity less, one with another
    diagnosis 0. It turns the binary "same diagnosis" of DESIGN.md §4 into the
    graded gains that :func:`ndcg_at_k` rewards for ranking a severe AD case
    closer to a severe AD query than a mild one.

    Parameters
    ----------
    query_labels : array_like, shape (Q,) (or a scalar for one query), int
    db_labels : array_like, shape (N,), int
        Diagnoses (0 NC, 1 MCI, 2 AD).
    query_severity : array_like, shape (Q,) (or a scalar), float
    db_severity : array_like, shape (N,), float
        Disease severity s of each subject (the synthetic cohort's latent
        severity in [0, 1]; a clinical score on real data). Must be finite.
    scale : float, optional
        Severity difference at which relevance falls to 1/e; finite and > 0.
        By default the pooled within-class standard deviation of
        ``db_severity``,

            scale = sqrt( Σ_c Σ_{d: y_d = c} (s_d - s̄_c)² / (N - C) ),

        s̄_c the mean severity of database class c and C the number of
        classes present in ``db_labels``, so that the decay is measured in
        the units of the spread inside a diagnosis.

    Returns
    -------
    numpy.ndarray, shape (Q, N), float64
        Relevance in [0, 1].

    Raises
    ------
    ValueError
        If labels are not integers, a severity array does not have one
        finite value per label, or ``scale`` (given, or the default when
        every class has a single item or no spread) is not finite and > 0.

    References
    ----------
    Järvelin & Kekäläinen (2002), graded relevance for cumulated gain;
    DESIGN.md §4 (relevance as same diagnosis).
    """
    query_labels = _check_labels(query_labels, "query_labels", np.size(_to_numpy(query_labels)), "query_labels")
    db_labels = _check_labels(db_labels, "db_labels", np.size(_to_numpy(db_labels)), "db_labels")
    if len(query_labels) == 0 or len(db_labels) == 0:
        raise ValueError("query_labels and db_labels must not be empty")
    query_severity = _check_severity(query_severity, "query_severity", len(query_labels), "query_labels")
    db_severity = _check_severity(db_severity, "db_severity", len(db_labels), "db_labels")
    if scale is None:
        scale = _pooled_within_class_sd(db_severity, db_labels)
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(
                f"scale: the default, the pooled within-class standard deviation of db_severity, is "
                f"{scale!r} (every database class has a single item, or no spread); pass scale > 0")
    else:
        try:
            scale = float(scale)
        except (TypeError, ValueError):
            raise ValueError(f"scale must be a finite number > 0; got {scale!r}") from None
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a finite number > 0; got {scale!r}")
    same = query_labels[:, None] == db_labels[None, :]
    decay = np.exp(-np.abs(query_severity[:, None] - db_severity[None, :]) / scale)
    return np.where(same, decay, 0.0)


def _check_relevance(relevance, n_query: int, n_db: int) -> np.ndarray:
    array = np.asarray(_to_numpy(relevance))
    if array.dtype.kind not in "biuf":
        raise ValueError(f"relevance must hold real numbers; got dtype {array.dtype}")
    if array.ndim == 1 and n_query == 1:
        array = array[None, :]
    if array.shape != (n_query, n_db):
        raise ValueError(f"relevance must have shape (Q, N) = ({n_query}, {n_db}), one row per query "
                         f"and one column per database item; got shape {array.shape}")
    array = array.astype(np.float64, copy=False)
    bad = ~np.isfinite(array) | (array < 0)
    if bad.any():
        q, d = np.argwhere(bad)[0]
        raise ValueError(f"relevance must be finite and >= 0; found {float(array[q, d])!r} "
                         f"at query {q}, item {d}")
    return array


@dataclass(frozen=True)
class NDCGReport:
    """Per-query nDCG@k and the queries left out of the mean.

    Attributes
    ----------
    ndcg : numpy.ndarray, shape (Q,), float64
        nDCG@k of each query (its expectation over tie orders with
        ``ties="expected"``); NaN for a skipped query.
    idcg : numpy.ndarray, shape (Q,), float64
        IDCG@k, the DCG@k of the ideal ranking; 0 for a query with no
        relevant item, which is skipped.
    k : int
        The cut-off used (capped at the database size N).
    ties : str
    """

    ndcg: np.ndarray
    idcg: np.ndarray
    k: int
    ties: str

    @property
    def skipped(self) -> np.ndarray:
        """Boolean mask (Q,) of queries with no relevant item (IDCG@k = 0)."""
        return self.idcg == 0

    @property
    def n_skipped(self) -> int:
        """How many queries had no relevant item and were left out of the mean."""
        return int(self.skipped.sum())

    @property
    def mean_ndcg(self) -> float:
        """Mean nDCG@k over the queries that have a relevant item (NaN, with a warning, if none)."""
        kept = self.ndcg[~self.skipped]
        if len(kept) == 0:
            warnings.warn("no query has a relevant item in the database; nDCG is NaN",
                          RuntimeWarning, stacklevel=2)
            return float("nan")
        return float(kept.mean())


def ndcg_at_k(query_codes, db_codes, relevance, k: int, ties: str = "expected",
              per_query: bool = False, *, backend: str = "auto"):
    """Normalised discounted cumulative gain of Hamming ranking with graded relevance.

    DCG@k = Σ_{n=1..k} rel_n / log2(n + 1), with *linear* gains (rel_n
    itself, not 2^rel_n - 1) and rel_n the relevance of the item at rank n
    of the ranking by Hamming distance; IDCG@k is the DCG@k of the
    relevances sorted in descending order (the ideal ranking), and
    nDCG@k = DCG@k / IDCG@k lies in [0, 1], 1 for a perfect ranking.
    Queries with IDCG@k = 0 (no relevant item) are skipped and counted, as
    :func:`mean_average_precision` does.

    Parameters
    ----------
    query_codes : array_like or torch.Tensor, shape (Q, K) or (K,)
        ±1 query codes.
    db_codes : array_like or torch.Tensor, shape (N, K)
        ±1 database codes.
    relevance : array_like or torch.Tensor, shape (Q, N) (or (N,) for one query), float
        Graded relevance of every database item to every query, finite and
        >= 0 (e.g. :func:`severity_relevance`; 0/1 for "same diagnosis").
    k : int
        Cut-off, >= 1; a value above N scores the whole ranking (k = N).
    ties : {"expected", "index"}
        "expected": the exact expectation under a uniformly random order
        inside each group of equal distance; "index": ties ranked by
        database index (a stable sort).
    per_query : bool
        Return an :class:`NDCGReport` with every query's value instead of the mean.
    backend : {"auto", "numpy", "faiss", "torch"}
        Distance kernel; it does not change the result.

    Returns
    -------
    float or NDCGReport
        The mean nDCG@k over the queries with a relevant item (NaN, with a
        RuntimeWarning, if there are none); with ``per_query=True`` an
        :class:`NDCGReport` (``.ndcg`` per query, NaN where skipped,
        ``.idcg``, ``.n_skipped`` and ``.mean_ndcg``).

    Raises
    ------
    ValueError
        On codes that are not ±1, different code lengths, an empty input,
        a ``relevance`` of the wrong shape or with negative or non-finite
        values, ``k`` < 1 or not an integer, or a bad ``ties``.

    Notes
    -----
    With ``ties="expected"``, group g of the n_g items at Hamming distance
    g comes after N_b items and holds ranks N_b + 1 .. N_b + n_g, of which
    m_g = clip(k - N_b, 0, n_g) fall in the top k. By linearity
    E[DCG@k] = Σ_{n ≤ k} E[rel_n] / log2(n + 1), and under a uniformly random
    order inside the group every rank n of group g holds each of its items
    with probability 1/n_g, so E[rel_n] = r̄_g, the group's mean relevance:

        E[DCG@k] = Σ_g r̄_g (D(N_b + m_g) - D(N_b)),   D(i) = Σ_{n=1..i} 1/log2(n + 1).

    IDCG@k does not depend on the order, so E[nDCG@k] = E[DCG@k] / IDCG@k.
    Each query costs two weighted histograms over the K + 1 distances (no
    sort) and a partial sort of its relevance row for the ideal top k.

    References
    ----------
    Järvelin & Kekäläinen (2002), "Cumulated gain-based evaluation of IR
    techniques", ACM TOIS 20(4), DCG and nDCG; McSherry & Najork (2008),
    tie-aware scores (their tie-averaged DCG).
    """
    _check_ties(ties)
    try:
        integral = int(k) == k
    except (TypeError, ValueError):
        integral = False
    if not integral or k < 1:
        raise ValueError(f"k={k!r} must be an integer >= 1")
    query_packed, db_packed, n_bits = _check_pair(query_codes, db_codes)
    n_query, n_db = len(query_packed), len(db_packed)
    relevance = _check_relevance(relevance, n_query, n_db)
    k = int(min(k, n_db))
    bins = n_bits + 1
    # discount[n - 1] = 1/log2(n + 1); cumulative[i] = D(i).
    discount = 1.0 / np.log2(np.arange(2, n_db + 2, dtype=np.float64))
    cumulative = np.concatenate([[0.0], np.cumsum(discount)])

    # Row sums rather than matrix products, so that a query's score does not
    # depend on the other queries of its block (BLAS sums in its own order).
    dcg = np.empty(n_query)
    idcg = np.empty(n_query)
    rows = max(1, min(n_query, _BLOCK_ELEMENTS // n_db))
    for start in range(0, n_query, rows):
        stop = min(n_query, start + rows)
        gains = relevance[start:stop]
        distances = packed_hamming_distance(query_packed[start:stop], db_packed, n_bits, backend)
        if ties == "expected":
            flat = (distances.astype(np.intp) + (np.arange(stop - start) * bins)[:, None]).ravel()
            total = np.bincount(flat, minlength=(stop - start) * bins).reshape(-1, bins).astype(np.float64)
            gain_sum = np.bincount(flat, weights=gains.ravel(),
                                   minlength=(stop - start) * bins).reshape(-1, bins)
            n_before = np.cumsum(total, axis=1) - total
            m = np.clip(k - n_before, 0.0, total)
            mean_gain = np.where(total > 0, gain_sum / np.maximum(total, 1.0), 0.0)
            # Σ of 1/log2(n + 1) over the group's ranks in the top k: D(N_b + m_g) - D(N_b).
            in_top = cumulative[(n_before + m).astype(np.intp)] - cumulative[n_before.astype(np.intp)]
            dcg[start:stop] = (mean_gain * in_top).sum(axis=1)
        else:
            order = np.argsort(distances, axis=1, kind="stable")[:, :k]
            dcg[start:stop] = (np.take_along_axis(gains, order, axis=1) * discount[:k]).sum(axis=1)
        best = gains if k == n_db else np.partition(gains, n_db - k, axis=1)[:, n_db - k:]
        ideal = -np.sort(-best, axis=1)                        # the k largest gains, descending
        idcg[start:stop] = (ideal * discount[:k]).sum(axis=1)

    with np.errstate(invalid="ignore", divide="ignore"):
        ndcg = np.where(idcg > 0, dcg / idcg, np.nan)
    report = NDCGReport(ndcg=ndcg, idcg=idcg, k=k, ties=ties)
    return report if per_query else report.mean_ndcg
