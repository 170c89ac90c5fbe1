"""Retrieval metrics against their literal definitions (DESIGN.md §4).

Every metric is checked against a brute-force reference written from the
definition: the expected-ties AP against the mean over *all* orders inside
tie groups, the index-ties AP against a literal stable sort, AP against
scikit-learn when there are no ties, PR and precision@k against loops over
queries and radii.
"""

import itertools
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

from neurohash_lite import metrics
from neurohash_lite.metrics import (
    average_precision_per_query,
    expected_average_precision,
    hamming_distance,
    hamming_histograms,
    mean_average_precision,
    pr_curve_hamming_radius,
    pr_curve_ranking,
    precision_at_k,
    sign_codes,
)


# --------------------------------------------------------------------------
# Literal references
# --------------------------------------------------------------------------
def random_codes(rng, n, n_bits):
    return np.where(rng.random((n, n_bits)) < 0.5, -1, 1).astype(np.int8)


def matmul_distance(query_codes, db_codes):
    n_bits = query_codes.shape[1]
    return (n_bits - query_codes.astype(np.int64) @ db_codes.astype(np.int64).T) // 2


def literal_ap(ranked_relevance, top_k=None):
    """AP_q = (1/R) Σ rel_n P@n, or its top-k form divided by min(R, k)."""
    ranked_relevance = np.asarray(ranked_relevance, dtype=bool)
    n_relevant = ranked_relevance.sum()
    if n_relevant == 0:
        return np.nan
    total, hits = 0.0, 0
    for n, rel in enumerate(ranked_relevance, start=1):
        if top_k is not None and n > top_k:
            break
        if rel:
            hits += 1
            total += hits / n
    return total / (n_relevant if top_k is None else min(n_relevant, top_k))


def all_tie_orders(distance_row):
    """Every ranking of the indices sorted by distance, over all orders of each tie group."""
    groups = [np.flatnonzero(distance_row == d) for d in np.unique(distance_row)]
    for permutation in itertools.product(*(itertools.permutations(g) for g in groups)):
        yield np.concatenate(permutation)


def index_order(distance_row):
    return np.argsort(distance_row, kind="stable")


# --------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------
@st.composite
def tiny_problems(draw, max_db=7, max_bits=4):
    """A few queries and a tiny database with many ties (short codes)."""
    n_bits = draw(st.integers(1, max_bits))
    n_db = draw(st.integers(1, max_db))
    n_query = draw(st.integers(1, 3))
    sign = st.sampled_from([-1, 1])
    db = np.array(draw(st.lists(st.lists(sign, min_size=n_bits, max_size=n_bits),
                                min_size=n_db, max_size=n_db)), dtype=np.int8)
    queries = np.array(draw(st.lists(st.lists(sign, min_size=n_bits, max_size=n_bits),
                                     min_size=n_query, max_size=n_query)), dtype=np.int8)
    label = st.integers(0, 2)
    db_labels = np.array(draw(st.lists(label, min_size=n_db, max_size=n_db)))
    query_labels = np.array(draw(st.lists(label, min_size=n_query, max_size=n_query)))
    return queries, db, query_labels, db_labels


# --------------------------------------------------------------------------
# Sign codes and Hamming distance
# --------------------------------------------------------------------------
def test_sign_codes_maps_zero_to_plus_one():
    u = np.array([[-0.5, 0.0, 0.3, -0.0]])
    np.testing.assert_array_equal(sign_codes(u), [[-1, 1, 1, 1]])
    assert sign_codes(u).dtype == np.int8


def test_sign_codes_keeps_torch_tensors_as_tensors():
    u = torch.tensor([[-2.0, 0.0, 1e-9]])
    codes = sign_codes(u)
    assert isinstance(codes, torch.Tensor) and codes.dtype == torch.int8
    assert codes.tolist() == [[-1, 1, 1]]


def test_sign_codes_rejects_nan():
    with pytest.raises(ValueError, match="NaN"):
        sign_codes(np.array([0.1, np.nan]))
    with pytest.raises(ValueError, match="NaN"):
        sign_codes(torch.tensor([np.nan]))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_hamming_distance_properties(n_bits, n_query, n_db, seed):
    rng = np.random.default_rng(seed)
    queries, db = random_codes(rng, n_query, n_bits), random_codes(rng, n_db, n_bits)
    distance = hamming_distance(queries, db)
    np.testing.assert_array_equal(distance, matmul_distance(queries, db))     # (K - <b, c>)/2
    assert distance.dtype == np.min_scalar_type(n_bits)
    assert distance.min() >= 0 and distance.max() <= n_bits                   # in [0, K]
    np.testing.assert_array_equal(hamming_distance(db, queries), distance.T)  # symmetric
    np.testing.assert_array_equal(np.diag(hamming_distance(db, db)), 0)       # zero on itself


@pytest.mark.parametrize("backend", ["numpy", "torch", "faiss"])
@pytest.mark.parametrize("n_bits", [5, 16, 64, 100, 128, 256])
def test_hamming_distance_backends_agree(backend, n_bits):
    if backend == "faiss":
        pytest.importorskip("faiss")
    rng = np.random.default_rng(n_bits)
    queries, db = random_codes(rng, 9, n_bits), random_codes(rng, 40, n_bits)
    np.testing.assert_array_equal(hamming_distance(queries, db, backend=backend),
                                  matmul_distance(queries, db))


def test_hamming_distance_of_one_query_is_a_row():
    rng = np.random.default_rng(0)
    queries, db = random_codes(rng, 3, 16), random_codes(rng, 10, 16)
    row = hamming_distance(queries[1], db)
    assert row.shape == (10,)
    np.testing.assert_array_equal(row, hamming_distance(queries, db)[1])


def test_hamming_distance_writes_into_out_for_many_queries_and_for_one():
    rng = np.random.default_rng(2)
    queries, db = random_codes(rng, 3, 16), random_codes(rng, 10, 16)
    out = np.zeros((3, 10), np.int32)
    assert hamming_distance(queries, db, out=out) is out
    np.testing.assert_array_equal(out, matmul_distance(queries, db))
    row = np.zeros(10, np.uint8)
    assert hamming_distance(queries[1], db, out=row) is row
    np.testing.assert_array_equal(row, matmul_distance(queries, db)[1])
    with pytest.raises(ValueError, match="out has shape"):
        hamming_distance(queries, db, out=np.zeros((10, 3), np.uint8))


def test_hamming_distance_accepts_torch_and_float_codes():
    rng = np.random.default_rng(1)
    queries, db = random_codes(rng, 4, 32), random_codes(rng, 12, 32)
    expected = hamming_distance(queries, db)
    np.testing.assert_array_equal(
        hamming_distance(torch.from_numpy(queries).float(), torch.from_numpy(db)), expected)
    np.testing.assert_array_equal(hamming_distance(queries.astype(np.float64), db.tolist()), expected)


@settings(max_examples=60, deadline=None)
@given(n_bits=st.sampled_from([7, 16, 64, 72, 128]), n_db=st.integers(1, 50),
       dtypes=st.tuples(*[st.sampled_from([np.int8, np.int16, np.float32, np.float64])] * 2),
       strided=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_hamming_distance_of_any_dtype_and_layout_is_the_matmul_formula(n_bits, n_db, dtypes, strided, seed):
    rng = np.random.default_rng(seed)
    queries, db = random_codes(rng, 5, n_bits), random_codes(rng, 2 * n_db, n_bits)
    db = db[::2] if strided else db[:n_db]                     # every other row: not contiguous
    expected = matmul_distance(queries, db)
    np.testing.assert_array_equal(
        hamming_distance(queries.astype(dtypes[0]), np.asfortranarray(db.astype(dtypes[1]))), expected)


@pytest.mark.parametrize("value", [0, 2, -2, 127, -128, np.nan, 0.5])
@pytest.mark.parametrize("argument", ["query_codes", "db_codes"])
def test_hamming_distance_names_the_argument_row_and_bit_of_a_non_sign(value, argument):
    rng = np.random.default_rng(0)
    codes = {"query_codes": random_codes(rng, 4, 64), "db_codes": random_codes(rng, 3000, 64)}
    dtype = np.float64 if isinstance(value, float) else np.int8
    bad = codes[argument].astype(dtype)
    row = len(bad) - 2
    bad[row, 37] = value
    codes[argument] = bad
    with pytest.raises(ValueError) as error:
        hamming_distance(codes["query_codes"], codes["db_codes"])
    assert str(error.value) == (f"{argument} must hold only -1 and +1 (sign codes, see sign_codes); "
                                f"found {bad[row, 37]!r} at row {row}, bit 37")


# --------------------------------------------------------------------------
# Histograms
# --------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(tiny_problems(max_db=30, max_bits=8))
def test_histograms_count_relevant_and_all_items_per_distance(problem):
    queries, db, query_labels, db_labels = problem
    relevant, total = hamming_histograms(queries, db, query_labels, db_labels)
    distance = matmul_distance(queries, db)
    n_bits = queries.shape[1]
    for q in range(len(queries)):
        np.testing.assert_array_equal(total[q], np.bincount(distance[q], minlength=n_bits + 1))
        rel = db_labels == query_labels[q]
        np.testing.assert_array_equal(relevant[q], np.bincount(distance[q][rel], minlength=n_bits + 1))


def test_histograms_of_a_large_database_match_bincount():
    """Long label blocks are counted two distances at a time; check that path."""
    rng = np.random.default_rng(3)
    n_db = 3 * metrics._PAIR_COUNT_MIN + 5                    # odd, so blocks start at odd offsets
    queries, db = random_codes(rng, 3, 24), random_codes(rng, n_db, 24)
    query_labels, db_labels = np.array([0, 1, 2]), rng.integers(0, 3, n_db)
    relevant, total = hamming_histograms(queries, db, query_labels, db_labels)
    distance = matmul_distance(queries, db)
    for q in range(3):
        np.testing.assert_array_equal(total[q], np.bincount(distance[q], minlength=25))
        np.testing.assert_array_equal(relevant[q], np.bincount(distance[q][db_labels == q], minlength=25))


# --------------------------------------------------------------------------
# mAP
# --------------------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(tiny_problems(), st.sampled_from([None, 1, 2, 3, 5, 10]))
def test_expected_ap_is_the_mean_over_all_tie_orders(problem, top_k):
    queries, db, query_labels, db_labels = problem
    report = average_precision_per_query(queries, db, query_labels, db_labels, top_k=top_k)
    distance = matmul_distance(queries, db)
    for q in range(len(queries)):
        rel = db_labels == query_labels[q]
        if not rel.any():
            assert np.isnan(report.ap[q])
            continue
        brute = np.mean([literal_ap(rel[order], top_k) for order in all_tie_orders(distance[q])])
        assert report.ap[q] == pytest.approx(brute, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(tiny_problems(max_db=40, max_bits=6), st.sampled_from([None, 1, 3, 8]))
def test_index_ties_ap_is_a_literal_stable_sort(problem, top_k):
    queries, db, query_labels, db_labels = problem
    report = average_precision_per_query(queries, db, query_labels, db_labels, top_k=top_k, ties="index")
    distance = matmul_distance(queries, db)
    for q in range(len(queries)):
        rel = db_labels == query_labels[q]
        expected = literal_ap(rel[index_order(distance[q])], top_k)
        np.testing.assert_allclose(report.ap[q], expected, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("seed", range(5))
def test_expected_ap_equals_sklearn_without_ties(seed):
    """Database item i differs from the all-ones query in i bits: no two distances tie."""
    rng = np.random.default_rng(seed)
    n_db = n_bits = 40
    db = np.ones((n_db, n_bits), dtype=np.int8)
    for i in range(n_db):
        db[i, rng.choice(n_bits, size=i, replace=False)] = -1
    db = db[rng.permutation(n_db)]
    query = np.ones(n_bits, dtype=np.int8)
    db_labels = rng.integers(0, 3, n_db)
    relevant = db_labels == 1
    sklearn_ap = average_precision_score(relevant, -hamming_distance(query, db).astype(float))
    for ties in ("expected", "index"):
        assert mean_average_precision(query, db, 1, db_labels, ties=ties) == pytest.approx(sklearn_ap, abs=1e-12)


def test_expected_ap_by_hand():
    """A tie group of 3 items (1 relevant) at distance 0, then the other relevant item."""
    query = np.array([1, 1])
    db = np.array([[1, 1], [1, 1], [1, 1], [-1, -1]])
    db_labels = np.array([0, 1, 1, 0])
    # R = 2. Item 0 is at rank 1, 2 or 3 with probability 1/3 each (precision 1/rank);
    # item 3 is at rank 4 with precision 2/4. E[AP] = ((1 + 1/2 + 1/3)/3 + 2/4)/2 = 5/9.
    assert mean_average_precision(query, db, 0, db_labels, ties="expected") == pytest.approx(5 / 9)
    # By index, item 0 is first: AP = (1 + 2/4)/2.
    assert mean_average_precision(query, db, 0, db_labels, ties="index") == pytest.approx(3 / 4)


def test_ideal_codes_give_ap_one_and_the_map_is_a_plain_float():
    rng = np.random.default_rng(0)
    prototypes = random_codes(rng, 3, 16)
    db_labels = rng.integers(0, 3, 50)
    query_labels = np.array([0, 1, 2])
    value = mean_average_precision(prototypes[query_labels], prototypes[db_labels], query_labels, db_labels)
    assert type(value) is float and value == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(tiny_problems(max_db=25, max_bits=6), st.integers(0, 2**32 - 1))
def test_expected_ap_does_not_depend_on_database_order(problem, seed):
    queries, db, query_labels, db_labels = problem
    permutation = np.random.default_rng(seed).permutation(len(db))
    first = average_precision_per_query(queries, db, query_labels, db_labels)
    second = average_precision_per_query(queries, db[permutation], query_labels, db_labels[permutation])
    np.testing.assert_allclose(first.ap, second.ap, atol=1e-12, equal_nan=True)
    assert np.all((first.ap[~first.skipped] >= 0) & (first.ap[~first.skipped] <= 1 + 1e-12))


def test_index_ties_depend_on_database_order_and_expected_ties_do_not():
    query = np.array([1, 1, 1, 1])
    db = np.array([[1, 1, 1, 1]] * 4)                # one tie group of four
    db_labels = np.array([1, 1, 0, 0])
    relevant_first = mean_average_precision(query, db, 1, db_labels, ties="index")
    relevant_last = mean_average_precision(query, db, 1, db_labels[::-1], ties="index")
    assert relevant_first == pytest.approx(1.0)
    assert relevant_last == pytest.approx((1 / 3 + 2 / 4) / 2)
    assert mean_average_precision(query, db, 1, db_labels) == pytest.approx(
        mean_average_precision(query, db, 1, db_labels[::-1]))


def test_closed_form_matches_a_direct_sum_on_a_large_database():
    """ΔH from digamma against Σ_j 1/(N_b + j) summed term by term, at N = 100 000."""
    rng = np.random.default_rng(7)
    total = rng.multinomial(100_000, np.full(17, 1 / 17), size=4)
    relevant = rng.binomial(total, 0.3)
    closed = expected_average_precision(relevant, total)
    for q in range(4):
        acc, n_before, r_before = 0.0, 0, 0
        for n, r in zip(total[q], relevant[q]):
            j = np.arange(1, n + 1, dtype=np.float64)
            pair = (r - 1) / (n - 1) if n > 1 else 0.0
            acc += (r / n) * np.sum((r_before + 1 + (j - 1) * pair) / (n_before + j)) if n else 0.0
            n_before, r_before = n_before + n, r_before + r
        assert closed[q] == pytest.approx(acc / relevant[q].sum(), rel=1e-10)


def test_queries_without_relevant_items_are_skipped_and_counted():
    rng = np.random.default_rng(2)
    queries, db = random_codes(rng, 4, 8), random_codes(rng, 20, 8)
    db_labels = rng.integers(0, 2, 20)                  # no label 2 in the database
    query_labels = np.array([0, 2, 1, 2])
    report = average_precision_per_query(queries, db, query_labels, db_labels)
    assert report.n_skipped == 2
    np.testing.assert_array_equal(report.skipped, [False, True, False, True])
    assert report.mean_ap == pytest.approx(np.mean(report.ap[[0, 2]]))
    assert mean_average_precision(queries, db, query_labels, db_labels) == pytest.approx(report.mean_ap)
    kept = mean_average_precision(queries[[0, 2]], db, query_labels[[0, 2]], db_labels)
    assert report.mean_ap == pytest.approx(kept)


def test_map_is_nan_with_a_warning_when_every_query_is_skipped():
    rng = np.random.default_rng(2)
    queries, db = random_codes(rng, 2, 8), random_codes(rng, 5, 8)
    with pytest.warns(RuntimeWarning, match="no query has a relevant item"):
        value = mean_average_precision(queries, db, [2, 2], [0, 0, 1, 1, 0])
    assert np.isnan(value)


def test_map_at_k_above_the_database_size_is_map_at_all():
    rng = np.random.default_rng(4)
    queries, db = random_codes(rng, 5, 6), random_codes(rng, 12, 6)
    query_labels, db_labels = rng.integers(0, 3, 5), rng.integers(0, 3, 12)
    for ties in ("expected", "index"):
        assert mean_average_precision(queries, db, query_labels, db_labels, top_k=50, ties=ties) == \
            pytest.approx(mean_average_precision(queries, db, query_labels, db_labels, ties=ties))


def test_map_at_k_divides_by_min_r_and_k():
    """A lone hit at rank 1 of a top 3 with 5 relevant items scores 1/3, not 1."""
    query = np.array([1, 1, 1])
    db = np.array([[1, 1, 1], [1, 1, -1], [1, -1, -1], [-1, -1, -1], [-1, -1, -1],
                   [-1, -1, -1], [-1, -1, -1], [-1, -1, -1]])
    db_labels = np.array([0, 1, 1, 0, 0, 0, 0, 1])
    for ties in ("expected", "index"):
        assert mean_average_precision(query, db, 0, db_labels, top_k=3, ties=ties) == pytest.approx(1 / 3)


def test_torch_inputs_give_the_numpy_results():
    rng = np.random.default_rng(5)
    queries, db = random_codes(rng, 6, 16), random_codes(rng, 30, 16)
    query_labels, db_labels = rng.integers(0, 3, 6), rng.integers(0, 3, 30)
    as_torch = [torch.from_numpy(a) for a in (queries, db, query_labels, db_labels)]
    assert mean_average_precision(*as_torch) == mean_average_precision(queries, db, query_labels, db_labels)
    np.testing.assert_array_equal(
        pr_curve_hamming_radius(*as_torch)[1], pr_curve_hamming_radius(queries, db, query_labels, db_labels)[1])


@pytest.mark.parametrize("backend", ["numpy", "torch", "faiss"])
def test_metrics_do_not_depend_on_the_backend(backend):
    if backend == "faiss":
        pytest.importorskip("faiss")
    rng = np.random.default_rng(6)
    queries, db = random_codes(rng, 5, 64), random_codes(rng, 50, 64)
    query_labels, db_labels = rng.integers(0, 3, 5), rng.integers(0, 3, 50)
    for ties in ("expected", "index"):
        assert mean_average_precision(queries, db, query_labels, db_labels, ties=ties, backend=backend) == \
            mean_average_precision(queries, db, query_labels, db_labels, ties=ties, backend="numpy")


# --------------------------------------------------------------------------
# Precision@k and PR curves
# --------------------------------------------------------------------------
@settings(max_examples=80, deadline=None)
@given(tiny_problems())
def test_precision_at_k_against_the_literal_definitions(problem):
    queries, db, query_labels, db_labels = problem
    ks = np.arange(1, len(db) + 1)
    distance = matmul_distance(queries, db)
    expected_ties, index_ties = [], []
    for q in range(len(queries)):
        rel = db_labels == query_labels[q]
        orders = list(all_tie_orders(distance[q]))
        expected_ties.append([np.mean([rel[o][:k].sum() / k for o in orders]) for k in ks])
        index_ties.append([rel[index_order(distance[q])][:k].sum() / k for k in ks])
    np.testing.assert_allclose(precision_at_k(queries, db, query_labels, db_labels, ks),
                               np.mean(expected_ties, axis=0), atol=1e-12)
    np.testing.assert_allclose(precision_at_k(queries, db, query_labels, db_labels, ks, ties="index"),
                               np.mean(index_ties, axis=0), atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(tiny_problems(), st.sampled_from(["expected", "index"]))
def test_pr_curve_ranking_against_the_literal_definition(problem, ties):
    queries, db, query_labels, db_labels = problem
    ks, precision, recall = pr_curve_ranking(queries, db, query_labels, db_labels, ties=ties)
    np.testing.assert_array_equal(ks, np.arange(1, len(db) + 1))
    distance = matmul_distance(queries, db)
    precisions, recalls = [], []
    for q in range(len(queries)):
        rel = db_labels == query_labels[q]
        orders = list(all_tie_orders(distance[q])) if ties == "expected" else [index_order(distance[q])]
        hits = np.array([[rel[o][:k].sum() for k in ks] for o in orders]).mean(axis=0)
        precisions.append(hits / ks)
        if rel.any():
            recalls.append(hits / rel.sum())
    np.testing.assert_allclose(precision, np.mean(precisions, axis=0), atol=1e-12)
    if recalls:
        np.testing.assert_allclose(recall, np.mean(recalls, axis=0), atol=1e-12)
    else:
        assert np.isnan(recall).all()


@settings(max_examples=80, deadline=None)
@given(tiny_problems(max_db=20, max_bits=6), st.sampled_from(["micro", "macro"]))
def test_pr_curve_by_radius_against_the_literal_definition(problem, average):
    queries, db, query_labels, db_labels = problem
    radii, precision, recall = pr_curve_hamming_radius(queries, db, query_labels, db_labels, average=average)
    n_bits = queries.shape[1]
    np.testing.assert_array_equal(radii, np.arange(n_bits + 1))
    distance = matmul_distance(queries, db)
    for r in radii:
        retrieved = distance <= r                                             # (Q, N)
        rel = db_labels[None, :] == query_labels[:, None]
        hits, n_retrieved, n_relevant = (retrieved & rel).sum(1), retrieved.sum(1), rel.sum(1)
        if average == "micro":
            want_p = hits.sum() / n_retrieved.sum() if n_retrieved.sum() else np.nan
            want_r = hits.sum() / n_relevant.sum() if n_relevant.sum() else np.nan
        else:
            answered = n_retrieved > 0
            want_p = np.mean(hits[answered] / n_retrieved[answered]) if answered.any() else np.nan
            has = n_relevant > 0
            want_r = np.mean(hits[has] / n_relevant[has]) if has.any() else np.nan
        np.testing.assert_allclose(precision[r], want_p, atol=1e-12, equal_nan=True)
        np.testing.assert_allclose(recall[r], want_r, atol=1e-12, equal_nan=True)


def test_pr_curve_by_radius_precision_is_nan_where_nothing_is_retrieved():
    query = np.array([1, 1, 1, 1])
    db = np.array([[-1, -1, 1, 1], [-1, -1, -1, 1]])
    _, precision, recall = pr_curve_hamming_radius(query, db, 0, [0, 1])
    assert np.isnan(precision[:2]).all() and precision[2] == 1.0 and precision[4] == 0.5
    np.testing.assert_array_equal(recall, [0, 0, 1, 1, 1])


def test_single_query_pr_curve_equals_the_batch_row():
    rng = np.random.default_rng(8)
    queries, db = random_codes(rng, 4, 12), random_codes(rng, 40, 12)
    query_labels, db_labels = rng.integers(0, 3, 4), rng.integers(0, 3, 40)
    for average in ("micro", "macro"):
        single = pr_curve_hamming_radius(queries[2], db, query_labels[2], db_labels, average=average)
        batch = pr_curve_hamming_radius(queries[2:3], db, query_labels[2:3], db_labels, average=average)
        for a, b in zip(single, batch):
            np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------
GOOD = dict(query_codes=np.array([[1, -1, 1]]), db_codes=np.array([[1, 1, 1], [-1, -1, 1]]),
            query_labels=np.array([0]), db_labels=np.array([0, 1]))


@pytest.mark.parametrize("change, message", [
    (dict(db_codes=np.array([[1, 0, 1], [-1, -1, 1]])), "db_codes must hold only -1 and \\+1"),
    (dict(query_codes=np.array([[1, 2, 1]])), "query_codes must hold only"),
    (dict(db_codes=np.array([[1, np.nan, 1], [1, 1, 1]])), "db_codes must hold only"),
    (dict(db_codes=np.array([[1, 1], [-1, -1]])), "same code length"),
    (dict(db_labels=np.array([0, 1, 2])), "db_labels has 3 labels but db_codes has 2"),
    (dict(query_labels=np.array([0, 1])), "query_labels has 2 labels"),
    (dict(db_codes=np.zeros((0, 3))), "db_codes is empty"),
    (dict(query_codes=np.zeros((0, 3))), "query_codes is empty"),
    (dict(db_labels=np.array([[1, 0], [0, 1]])), "one integer label per code"),
    (dict(db_labels=np.array([0.5, 1.0])), "integer labels"),
    (dict(db_codes=np.array([1, 1, 1])), "db_codes must have shape"),
    (dict(db_codes=np.array([["a", "b", "c"]])), "numeric"),
])
@pytest.mark.parametrize("function", [mean_average_precision, pr_curve_hamming_radius,
                                      lambda *a: precision_at_k(*a, ks=[1]), pr_curve_ranking])
def test_bad_input_raises_a_value_error_naming_the_argument(function, change, message):
    arguments = {**GOOD, **change}
    with pytest.raises(ValueError, match=message):
        function(arguments["query_codes"], arguments["db_codes"], arguments["query_labels"],
                 arguments["db_labels"])


@pytest.mark.parametrize("call, message", [
    (lambda: mean_average_precision(*GOOD.values(), ties="random"), "ties="),
    (lambda: mean_average_precision(*GOOD.values(), top_k=0), "top_k"),
    (lambda: mean_average_precision(*GOOD.values(), top_k=1.5), "top_k"),
    (lambda: pr_curve_hamming_radius(*GOOD.values(), average="weighted"), "average="),
    (lambda: precision_at_k(*GOOD.values(), ks=[3]), "ks must lie in 1..2"),
    (lambda: precision_at_k(*GOOD.values(), ks=[0]), "ks must lie"),
    (lambda: precision_at_k(*GOOD.values(), ks=[1.5]), "ks must be"),
    (lambda: hamming_distance(GOOD["query_codes"], GOOD["db_codes"], backend="gpu"), "backend="),
    (lambda: hamming_distance([[1, 1]], [[1, 1, 1]]), "same code length"),
])
def test_bad_options_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_valid_calls_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean_average_precision(*GOOD.values())
        pr_curve_hamming_radius(*GOOD.values(), average="macro")
        pr_curve_ranking(*GOOD.values())


# --------------------------------------------------------------------------
# The benchmark's reference and entry point
# --------------------------------------------------------------------------
def test_sort_based_reference_equals_index_ties():
    from neurohash_lite.bench import sort_based_map, synthetic_codes

    rng = np.random.default_rng(9)
    db, db_labels = synthetic_codes(500, 16, rng)
    queries, query_labels = synthetic_codes(12, 16, rng)
    by_index = mean_average_precision(queries, db, query_labels, db_labels, ties="index")
    for distances in ("float", "uint8"):
        assert sort_based_map(queries, db, query_labels, db_labels, distances) == pytest.approx(by_index, abs=1e-12)


def test_retrieval_benchmark_runs_on_a_tiny_problem(capsys):
    from neurohash_lite.bench import main

    main(["retrieval", "--queries", "5", "--db-sizes", "300", "--bits", "16", "64",
          "--repeats", "1", "--no-memory"])
    printed = capsys.readouterr().out
    assert "faiss.hammings" in printed and "sort f32" in printed
    assert "Target" in printed and "at K >= 64" in printed      # the verdict, or "not judged" without faiss


def test_the_distance_target_is_judged_on_the_worst_row_at_64_bits_and_more(capsys):
    from neurohash_lite.bench import _print_distance_targets

    def row(n_db, n_bits, same_job, kernel):
        return {"N": n_db, "K": n_bits, "faiss_out_ms": 1.0, "same_job_ratio": same_job, "kernel_ratio": kernel}

    _print_distance_targets([row(10, 16, 9.0, 9.0), row(10, 64, 1.2, 1.5), row(100, 128, 1.4, 1.1)])
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        "Target hamming_distance / faiss from ±1 <= 1.5 at K >= 64: met (worst 1.40 at N = 100, K = 128)",
        "Target kernel out= / faiss out= <= 1.5 at K >= 64: met (worst 1.50 at N = 10, K = 64)",
    ]
    _print_distance_targets([row(10, 64, 1.2, 1.51)])
    assert "kernel out= / faiss out= <= 1.5 at K >= 64: MISSED (worst 1.51" in capsys.readouterr().out
    _print_distance_targets([row(10, 32, 1.0, 1.0), {**row(10, 64, 1.0, 1.0), "faiss_out_ms": float("nan")}])
    assert "not judged" in capsys.readouterr().out
