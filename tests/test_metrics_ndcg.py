"""Graded relevance and nDCG@k against their literal definitions.

nDCG@k = DCG@k / IDCG@k with DCG@k = Σ_{n ≤ k} rel_n / log2(n + 1) (linear
gains). The expected-ties nDCG is checked against the mean over *all* orders
inside tie groups, the index-ties nDCG against a literal stable sort, both
against a textbook sort when no distances tie, and the expected-ties form
also against scikit-learn's tie-averaged ``ndcg_score``.
"""

import itertools
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import ndcg_score

from neurohash_lite import metrics
from neurohash_lite.metrics import NDCGReport, average_precision_per_query, ndcg_at_k, severity_relevance


# --------------------------------------------------------------------------
# Literal references
# --------------------------------------------------------------------------
def random_codes(rng, n, n_bits):
    return np.where(rng.random((n, n_bits)) < 0.5, -1, 1).astype(np.int8)


def matmul_distance(query_codes, db_codes):
    n_bits = query_codes.shape[1]
    return (n_bits - query_codes.astype(np.int64) @ db_codes.astype(np.int64).T) // 2


def literal_dcg(ranked_relevance, k):
    """Σ_{i=1..k} rel_i / log2(i + 1), one term at a time."""
    return sum(rel / math.log2(i + 1) for i, rel in enumerate(ranked_relevance[:k], start=1))


def literal_ndcg(ranked_relevance, k):
    """DCG@k of the ranking over DCG@k of the relevance sorted in descending order."""
    ideal = literal_dcg(sorted(ranked_relevance, reverse=True), k)
    return np.nan if ideal == 0 else literal_dcg(list(ranked_relevance), k) / ideal


def all_tie_orders(distance_row):
    """Every ranking of the indices sorted by distance, over all orders of each tie group."""
    groups = [np.flatnonzero(distance_row == d) for d in np.unique(distance_row)]
    for permutation in itertools.product(*(itertools.permutations(g) for g in groups)):
        yield np.concatenate(permutation)


def index_order(distance_row):
    return np.argsort(distance_row, kind="stable")


def distinct_distance_db(rng, n_bits):
    """Database item i differs from the all-ones query in i bits: no two distances tie."""
    db = np.ones((n_bits + 1, n_bits), dtype=np.int8)
    for i in range(n_bits + 1):
        db[i, rng.choice(n_bits, size=i, replace=False)] = -1
    return db[rng.permutation(n_bits + 1)]


# --------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------
@st.composite
def tiny_graded_problems(draw, max_db=7, max_bits=4):
    """A few queries, a tiny database with many ties, and graded relevance (some zeros)."""
    n_bits = draw(st.integers(1, max_bits))
    n_db = draw(st.integers(1, max_db))
    n_query = draw(st.integers(1, 3))
    sign = st.sampled_from([-1, 1])
    db = np.array(draw(st.lists(st.lists(sign, min_size=n_bits, max_size=n_bits),
                                min_size=n_db, max_size=n_db)), dtype=np.int8)
    queries = np.array(draw(st.lists(st.lists(sign, min_size=n_bits, max_size=n_bits),
                                     min_size=n_query, max_size=n_query)), dtype=np.int8)
    grade = st.one_of(st.just(0.0), st.sampled_from([0.5, 1.0, 2.0, 3.0]),
                      st.floats(0, 1, allow_subnormal=False))
    relevance = np.array(draw(st.lists(st.lists(grade, min_size=n_db, max_size=n_db),
                                       min_size=n_query, max_size=n_query)))
    return queries, db, relevance


# --------------------------------------------------------------------------
# severity_relevance
# --------------------------------------------------------------------------
def test_severity_relevance_by_hand_on_a_two_by_three_case():
    query_labels, query_severity = [2, 1], [0.8, 0.4]
    db_labels, db_severity = [2, 2, 1], [0.8, 0.3, 0.6]
    rel = severity_relevance(query_labels, db_labels, query_severity, db_severity, scale=0.25)
    assert rel.shape == (2, 3) and rel.dtype == np.float64
    # Query 0: its own severity, 0.5 away, another class; query 1: two other-class items, 0.2 away.
    np.testing.assert_allclose(rel, [[1.0, math.exp(-0.5 / 0.25), 0.0],
                                     [0.0, 0.0, math.exp(-0.2 / 0.25)]], rtol=1e-12)


def test_severity_relevance_default_scale_is_the_pooled_within_class_sd():
    db_labels = np.array([0, 0, 0, 2, 2])
    db_severity = np.array([0.1, 0.2, 0.6, 0.5, 0.9])
    # Class 0: mean 0.3, squares 0.04 + 0.01 + 0.09 = 0.14; class 2: mean 0.7, squares 0.04 + 0.04.
    # N - C = 5 - 2 = 3, so scale = sqrt(0.22 / 3).
    scale = math.sqrt(0.22 / 3)
    default = severity_relevance([0, 2], db_labels, [0.1, 0.7], db_severity)
    np.testing.assert_allclose(default, severity_relevance([0, 2], db_labels, [0.1, 0.7], db_severity,
                                                           scale=scale), rtol=1e-12)
    assert default[0, 2] == pytest.approx(math.exp(-0.5 / scale))
    assert metrics._pooled_within_class_sd(db_severity, db_labels) == pytest.approx(scale, rel=1e-12)


def test_severity_relevance_takes_torch_and_a_single_query():
    rel = severity_relevance(torch.tensor(1), torch.tensor([1, 0, 1]), torch.tensor(0.5, dtype=torch.float64),
                             torch.tensor([0.5, 0.5, 0.7], dtype=torch.float64), scale=0.1)
    np.testing.assert_allclose(rel, [[1.0, 0.0, math.exp(-2.0)]], rtol=1e-12)


@pytest.mark.parametrize("change, message", [
    (dict(query_severity=[0.1, np.nan]), "query_severity must be finite; found nan at index 1"),
    (dict(db_severity=[np.nan, 0.1, 0.2]), "db_severity must be finite"),
    (dict(db_severity=[0.1, np.inf, 0.2]), "db_severity must be finite"),
    (dict(db_severity=[0.1, 0.2]), "db_severity has 2 values but db_labels has 3 labels"),
    (dict(query_severity=[0.1, 0.2, 0.3]), "query_severity has 3 values but query_labels has 2 labels"),
    (dict(query_severity=[[0.1, 0.2]]), "query_severity must be one real severity per subject"),
    (dict(db_labels=[0.5, 1.0, 1.0]), "integer labels"),
    (dict(scale=0.0), "scale must be a finite number > 0"),
    (dict(scale=-1.0), "scale must be a finite number > 0"),
    (dict(scale=np.inf), "scale must be a finite number > 0"),
    (dict(scale=np.nan), "scale must be a finite number > 0"),
    (dict(scale="wide"), "scale must be a finite number > 0"),
    (dict(db_labels=[0, 1, 2]), "scale: the default"),                  # one item per class: no spread
    (dict(db_severity=[0.3, 0.3, 0.3], db_labels=[1, 1, 1]), "scale: the default"),
])
def test_severity_relevance_bad_input_names_the_argument(change, message):
    arguments = dict(query_labels=[0, 1], db_labels=[0, 1, 1], query_severity=[0.1, 0.5],
                     db_severity=[0.1, 0.4, 0.6], scale=None)
    arguments.update(change)
    with pytest.raises(ValueError, match=message):
        severity_relevance(**arguments)


# --------------------------------------------------------------------------
# nDCG@k against the literal definitions
# --------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [1, 3, 10, 41])
def test_ndcg_without_ties_is_the_textbook_definition(seed, k):
    rng = np.random.default_rng(seed)
    db = distinct_distance_db(rng, 40)
    query = np.ones(40, dtype=np.int8)
    relevance = np.where(rng.random(41) < 0.4, rng.random(41), 0.0)
    order = np.argsort(matmul_distance(query[None], db)[0])
    ranked = relevance[order]
    expected = np.sum(ranked[:k] / np.log2(np.arange(2, k + 2))) / \
        np.sum(np.sort(relevance)[::-1][:k] / np.log2(np.arange(2, k + 2)))
    for ties in ("expected", "index"):
        assert ndcg_at_k(query, db, relevance, k, ties=ties) == pytest.approx(expected, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(tiny_graded_problems(), st.integers(1, 8))
def test_expected_ndcg_is_the_mean_over_all_tie_orders(problem, k):
    queries, db, relevance = problem
    report = ndcg_at_k(queries, db, relevance, k, per_query=True)
    distance = matmul_distance(queries, db)
    for q in range(len(queries)):
        if not (relevance[q] > 0).any():
            assert np.isnan(report.ndcg[q]) and report.skipped[q]
            continue
        brute = np.mean([literal_ndcg(relevance[q][order], k) for order in all_tie_orders(distance[q])])
        assert report.ndcg[q] == pytest.approx(brute, abs=1e-12)


def test_expected_ndcg_with_a_tie_group_straddling_rank_k_by_hand():
    """Ranks 1 (alone), then a group of three at ranks 2-4 of which k = 3 keeps two."""
    query = np.array([1, 1, 1, 1])
    db = np.array([[1, 1, 1, 1], [1, 1, 1, -1], [1, 1, -1, 1], [1, -1, 1, 1], [-1, -1, -1, -1]])
    relevance = np.array([0.5, 1.0, 0.0, 0.2, 0.9])
    # The group (distance 1) has mean gain 0.4 at ranks 2 and 3 whatever its order.
    dcg = 0.5 + 0.4 / math.log2(3) + 0.4 / math.log2(4)
    idcg = 1.0 + 0.9 / math.log2(3) + 0.5 / math.log2(4)
    assert ndcg_at_k(query, db, relevance, 3) == pytest.approx(dcg / idcg, abs=1e-12)
    brute = np.mean([literal_ndcg(relevance[order], 3) for order in all_tie_orders(np.array([0, 1, 1, 1, 4]))])
    assert brute == pytest.approx(dcg / idcg, abs=1e-12)
    by_index = (0.5 + 1.0 / math.log2(3) + 0.0 / math.log2(4)) / idcg
    assert ndcg_at_k(query, db, relevance, 3, ties="index") == pytest.approx(by_index, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(tiny_graded_problems(max_db=30, max_bits=6), st.integers(1, 35))
def test_index_ties_ndcg_is_a_literal_stable_sort(problem, k):
    queries, db, relevance = problem
    report = ndcg_at_k(queries, db, relevance, k, ties="index", per_query=True)
    distance = matmul_distance(queries, db)
    for q in range(len(queries)):
        expected = literal_ndcg(relevance[q][index_order(distance[q])], k)
        np.testing.assert_allclose(report.ndcg[q], expected, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("k", [1, 5, 17, 200])
def test_expected_ndcg_equals_sklearns_tie_averaged_ndcg(k):
    """scikit-learn's ndcg_score averages the gain of tied scores (McSherry & Najork) too."""
    rng = np.random.default_rng(k)
    queries, db = random_codes(rng, 6, 5), random_codes(rng, 60, 5)          # 6 distances: many ties
    relevance = np.where(rng.random((6, 60)) < 0.5, rng.random((6, 60)), 0.0)
    scores = -matmul_distance(queries, db).astype(float)
    report = ndcg_at_k(queries, db, relevance, k, per_query=True)
    for q in range(6):
        want = ndcg_score(relevance[q:q + 1], scores[q:q + 1], k=min(k, 60))
        assert report.ndcg[q] == pytest.approx(want, abs=1e-12)


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------
@pytest.mark.parametrize("ties", ["expected", "index"])
def test_a_perfect_ranking_scores_one(ties):
    """Relevance that falls with distance (equal inside a tie group) is ranked ideally."""
    rng = np.random.default_rng(3)
    queries, db = random_codes(rng, 4, 8), random_codes(rng, 80, 8)
    relevance = np.exp(-matmul_distance(queries, db) / 2.0) * (rng.random((4, 1)) + 0.5)
    for k in (1, 10, 80):
        report = ndcg_at_k(queries, db, relevance, k, ties=ties, per_query=True)
        np.testing.assert_allclose(report.ndcg, 1.0, atol=1e-12)


def test_queries_without_relevant_items_are_skipped_and_counted():
    rng = np.random.default_rng(2)
    queries, db = random_codes(rng, 4, 8), random_codes(rng, 20, 8)
    relevance = rng.random((4, 20))
    relevance[[1, 3]] = 0.0
    for ties in ("expected", "index"):
        report = ndcg_at_k(queries, db, relevance, 5, ties=ties, per_query=True)
        assert isinstance(report, NDCGReport) and report.k == 5 and report.ties == ties
        assert report.n_skipped == 2
        np.testing.assert_array_equal(report.skipped, [False, True, False, True])
        assert np.isnan(report.ndcg[[1, 3]]).all() and np.all(report.idcg[[1, 3]] == 0)
        assert report.mean_ndcg == pytest.approx(np.mean(report.ndcg[[0, 2]]))
        mean = ndcg_at_k(queries, db, relevance, 5, ties=ties)
        assert type(mean) is float and mean == pytest.approx(report.mean_ndcg)
        assert mean == pytest.approx(ndcg_at_k(queries[[0, 2]], db, relevance[[0, 2]], 5, ties=ties))


def test_ndcg_is_nan_with_a_warning_when_every_query_is_skipped():
    rng = np.random.default_rng(2)
    queries, db = random_codes(rng, 2, 8), random_codes(rng, 5, 8)
    with pytest.warns(RuntimeWarning, match="no query has a relevant item"):
        value = ndcg_at_k(queries, db, np.zeros((2, 5)), 3)
    assert np.isnan(value)


@settings(max_examples=60, deadline=None)
@given(tiny_graded_problems(max_db=25, max_bits=6), st.integers(1, 30), st.integers(0, 2**32 - 1))
def test_expected_ndcg_does_not_depend_on_database_order(problem, k, seed):
    queries, db, relevance = problem
    permutation = np.random.default_rng(seed).permutation(len(db))
    first = ndcg_at_k(queries, db, relevance, k, per_query=True)
    second = ndcg_at_k(queries, db[permutation], relevance[:, permutation], k, per_query=True)
    np.testing.assert_allclose(first.ndcg, second.ndcg, atol=1e-12, equal_nan=True)


@settings(max_examples=80, deadline=None)
@given(tiny_graded_problems(max_db=60, max_bits=10), st.integers(1, 70), st.sampled_from(["expected", "index"]))
def test_ndcg_lies_between_zero_and_one(problem, k, ties):
    queries, db, relevance = problem
    report = ndcg_at_k(queries, db, relevance, k, ties=ties, per_query=True)
    kept = report.ndcg[~report.skipped]
    assert np.all((kept >= 0) & (kept <= 1 + 1e-12))
    np.testing.assert_array_equal(report.skipped, ~(relevance > 0).any(axis=1))


def test_index_ties_depend_on_database_order_and_expected_ties_do_not():
    query = np.array([1, 1, 1, 1])
    db = np.array([[1, 1, 1, 1]] * 3 + [[-1, -1, -1, -1]])      # a tie group of three, then one
    relevance = np.array([1.0, 0.5, 0.0, 0.2])
    swapped = relevance[[2, 1, 0, 3]]
    assert ndcg_at_k(query, db, relevance, 2, ties="index") == pytest.approx(1.0)
    assert ndcg_at_k(query, db, swapped, 2, ties="index") < 1.0
    assert ndcg_at_k(query, db, relevance, 2) == pytest.approx(ndcg_at_k(query, db, swapped, 2))


def test_binary_relevance_at_full_depth_orders_like_ap():
    """0/1 gains: rank-sensitive, and 1 exactly when AP is 1."""
    rng = np.random.default_rng(11)
    prototypes = random_codes(rng, 3, 16)
    db_labels = rng.integers(0, 3, 40)
    query_labels = np.array([0, 1, 2])
    relevance = (query_labels[:, None] == db_labels[None, :]).astype(float)
    assert ndcg_at_k(prototypes, prototypes[db_labels], relevance, 40) == pytest.approx(1.0)
    assert average_precision_per_query(prototypes, prototypes[db_labels], query_labels,
                                       db_labels).mean_ap == pytest.approx(1.0)


def test_graded_ndcg_separates_rankings_that_binary_relevance_scores_alike():
    """The motivating case: an AD query at severity 0.9; severe AD first beats mild AD first."""
    query_code = np.array([1, 1, 1, 1])
    db = np.array([[1, 1, 1, 1], [1, 1, 1, -1], [-1, -1, -1, -1]])     # distances 0, 1, 4
    db_labels, db_severity = np.array([2, 2, 0]), np.array([0.85, 0.30, 0.10])
    severe_first = severity_relevance(2, db_labels, 0.9, db_severity, scale=0.2)
    mild_first = severity_relevance(2, db_labels[[1, 0, 2]], 0.9, db_severity[[1, 0, 2]], scale=0.2)
    assert ndcg_at_k(query_code, db, severe_first, 2) == pytest.approx(1.0)
    assert ndcg_at_k(query_code, db, mild_first, 2) < 0.9
    binary = [average_precision_per_query(query_code, db, 2, labels).mean_ap
              for labels in (db_labels, db_labels[[1, 0, 2]])]
    assert binary[0] == binary[1] == pytest.approx(1.0)


# --------------------------------------------------------------------------
# Inputs: k, shapes, torch, backends, large databases
# --------------------------------------------------------------------------
def test_k_above_the_database_size_is_capped():
    rng = np.random.default_rng(4)
    queries, db = random_codes(rng, 5, 6), random_codes(rng, 12, 6)
    relevance = rng.random((5, 12))
    for ties in ("expected", "index"):
        report = ndcg_at_k(queries, db, relevance, 50, ties=ties, per_query=True)
        assert report.k == 12
        np.testing.assert_array_equal(report.ndcg, ndcg_at_k(queries, db, relevance, 12, ties=ties,
                                                             per_query=True).ndcg)


def test_a_single_query_code_takes_a_relevance_row():
    rng = np.random.default_rng(5)
    queries, db = random_codes(rng, 3, 12), random_codes(rng, 30, 12)
    relevance = rng.random((3, 30))
    batch = ndcg_at_k(queries, db, relevance, 7, per_query=True)
    single = ndcg_at_k(queries[1], db, relevance[1], 7, per_query=True)
    assert single.ndcg.shape == (1,) and single.ndcg[0] == batch.ndcg[1]
    assert ndcg_at_k(queries[1], db, relevance[1:2], 7) == batch.ndcg[1]


def test_torch_inputs_give_the_numpy_results():
    rng = np.random.default_rng(6)
    queries, db = random_codes(rng, 6, 16), random_codes(rng, 30, 16)
    relevance = rng.random((6, 30))
    as_torch = [torch.from_numpy(a) for a in (queries, db, relevance)]
    for ties in ("expected", "index"):
        assert ndcg_at_k(*as_torch, 10, ties=ties) == ndcg_at_k(queries, db, relevance, 10, ties=ties)


@pytest.mark.parametrize("backend", ["numpy", "torch", "faiss"])
def test_ndcg_does_not_depend_on_the_backend(backend):
    if backend == "faiss":
        pytest.importorskip("faiss")
    rng = np.random.default_rng(7)
    queries, db = random_codes(rng, 5, 64), random_codes(rng, 50, 64)
    relevance = rng.random((5, 50))
    for ties in ("expected", "index"):
        assert ndcg_at_k(queries, db, relevance, 10, ties=ties, backend=backend) == \
            ndcg_at_k(queries, db, relevance, 10, ties=ties, backend="numpy")


def test_query_blocks_on_a_large_database_match_one_query_at_a_time():
    """Several blocks of queries (N = 20 000 gives 13 queries a block) against single-query calls."""
    rng = np.random.default_rng(8)
    queries, db = random_codes(rng, 30, 12), random_codes(rng, 20_000, 12)
    relevance = np.where(rng.random((30, 20_000)) < 0.3, rng.random((30, 20_000)), 0.0)
    for ties in ("expected", "index"):
        batch = ndcg_at_k(queries, db, relevance, 100, ties=ties, per_query=True).ndcg
        for q in (0, 12, 13, 29):
            assert batch[q] == ndcg_at_k(queries[q], db, relevance[q], 100, ties=ties)


GOOD = dict(query_codes=np.array([[1, -1, 1]]), db_codes=np.array([[1, 1, 1], [-1, -1, 1]]),
            relevance=np.array([[0.5, 1.0]]), k=1)


@pytest.mark.parametrize("change, message", [
    (dict(relevance=np.array([[0.5, 1.0, 0.0]])), r"relevance must have shape \(Q, N\) = \(1, 2\)"),
    (dict(relevance=np.array([[0.5], [1.0]])), "relevance must have shape"),
    (dict(relevance=np.array([[0.5, np.nan]])), "relevance must be finite and >= 0; found nan at query 0, item 1"),
    (dict(relevance=np.array([[np.inf, 1.0]])), "relevance must be finite"),
    (dict(relevance=np.array([[0.5, -0.1]])), "relevance must be finite and >= 0"),
    (dict(relevance=np.array([["a", "b"]])), "relevance must hold real numbers"),
    (dict(k=0), "k=0 must be an integer >= 1"),
    (dict(k=-3), "k=-3 must be"),
    (dict(k=1.5), "k=1.5 must be"),
    (dict(k=None), "k=None must be"),
    (dict(db_codes=np.array([[1, 0, 1], [-1, -1, 1]])), "db_codes must hold only -1 and \\+1"),
    (dict(db_codes=np.array([[1, 1], [-1, -1]])), "same code length"),
    (dict(query_codes=np.zeros((0, 3))), "query_codes is empty"),
])
def test_bad_input_raises_a_value_error_naming_the_argument(change, message):
    arguments = {**GOOD, **change}
    with pytest.raises(ValueError, match=message):
        ndcg_at_k(**arguments)


def test_bad_ties_raises():
    with pytest.raises(ValueError, match="ties="):
        ndcg_at_k(**GOOD, ties="random")


def test_valid_calls_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for ties in ("expected", "index"):
            ndcg_at_k(**GOOD, ties=ties)
            ndcg_at_k(**GOOD, ties=ties, per_query=True)


def test_both_functions_are_exported():
    assert {"severity_relevance", "ndcg_at_k", "NDCGReport"} <= set(metrics.__all__)
