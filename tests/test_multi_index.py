"""Multi-index hashing returns exactly what the exhaustive scan returns, ties and all."""

import numpy as np
import pytest

from neurohash_lite.multi_index import MultiIndexHashing, substring_bounds, substring_radii
from neurohash_lite.retrieval import HammingIndex


def random_codes(rng, n, n_bits):
    return np.where(rng.random((n, n_bits)) < 0.5, np.int8(1), np.int8(-1))


def tie_heavy_codes(rng, n, n_bits, n_distinct=6):
    """Few distinct codes, each repeated many times: every distance is a big tie."""
    distinct = random_codes(rng, n_distinct, n_bits)
    return distinct[rng.integers(0, n_distinct, n)]


def assert_same_knn(exhaustive, mih, queries, k):
    expected, got = exhaustive.search(queries, k), mih.search(queries, k)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert got[1].dtype == expected[1].dtype


def assert_same_range(exhaustive, mih, queries, radius):
    expected, got = exhaustive.range_search(queries, radius), mih.range_search(queries, radius)
    np.testing.assert_array_equal(got.lims, expected.lims)
    np.testing.assert_array_equal(got.indices, expected.indices)
    np.testing.assert_array_equal(got.distances, expected.distances)


@pytest.mark.parametrize("n_bits, n_tables, kind", [
    (16, 4, "random"), (13, 3, "random"), (13, 3, "ties"), (10, 10, "random"), (7, 1, "ties"),
    (64, 3, "random"), (70, 2, "ties"), (128, 5, "random"),
])
def test_search_and_range_search_equal_the_exhaustive_scan(n_bits, n_tables, kind):
    rng = np.random.default_rng([n_bits, n_tables])
    n = 400
    db = random_codes(rng, n, n_bits) if kind == "random" else tie_heavy_codes(rng, n, n_bits)
    db[::9] = db[3]                                         # duplicates of one code
    queries = random_codes(rng, 12, n_bits)
    queries[0], queries[1] = db[3], db[10]                  # queries that are stored codes
    exhaustive = HammingIndex(n_bits, backend="numpy")
    exhaustive.add(db)
    mih = MultiIndexHashing(n_bits, n_tables)
    mih.add(db)
    for k in (1, 7, 50, n):
        assert_same_knn(exhaustive, mih, queries, k)
    for radius in range(n_bits + 1):                        # every radius, 0..K
        assert_same_range(exhaustive, mih, queries, radius)


def test_sparse_tables_with_empty_buckets_and_incremental_add():
    rng = np.random.default_rng(1)
    n_bits = 48
    first, second = random_codes(rng, 30, n_bits), tie_heavy_codes(rng, 30, n_bits)
    mih = MultiIndexHashing(n_bits, n_tables=2)             # 24-bit substrings: sparse tables, most buckets empty
    exhaustive = HammingIndex(n_bits, backend="numpy")
    for part in (first, second):
        mih.add(part)
        exhaustive.add(part)
        queries = random_codes(rng, 5, n_bits)
        assert_same_knn(exhaustive, mih, queries, 10)
        for radius in (0, 5, 11, 12, 30, n_bits):
            assert_same_range(exhaustive, mih, queries, radius)
    assert mih.ntotal == len(mih) == 60
    assert mih.bucket_sizes(0).sum() == 60
    memory = mih.memory_bytes()
    assert memory["codes"] == 60 * 6 and memory["total"] == memory["codes"] + memory["tables"]


def test_auto_table_count_and_torch_queries():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    db = random_codes(rng, 1000, 32)
    mih = MultiIndexHashing(32)
    mih.add(db)
    exhaustive = HammingIndex(32, backend="numpy")
    exhaustive.add(db)
    queries = torch.from_numpy(random_codes(rng, 4, 32))
    assert_same_knn(exhaustive, mih, queries, 5)
    assert mih.n_tables == round(32 / np.log2(1000))


def test_substring_bounds_and_radii():
    assert substring_bounds(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert substring_bounds(8, 8) == [(z, z + 1) for z in range(8)]
    # r = r' m + a: the first a + 1 tables at r', the others at r' - 1.
    assert substring_radii(0, 3) == [0, -1, -1]
    assert substring_radii(7, 3) == [2, 2, 1]
    assert substring_radii(8, 3) == [2, 2, 2]
    # The pigeonhole behind it: any split of r = 7 over 3 substrings has one within the radii.
    rng = np.random.default_rng(3)
    radii = np.array(substring_radii(7, 3))
    for _ in range(200):
        split = rng.multinomial(7, [1 / 3] * 3)
        assert (split <= radii).any()


@pytest.mark.parametrize("call, message", [
    (lambda: MultiIndexHashing(16, n_tables=17), "n_tables"),
    (lambda: MultiIndexHashing(16, n_tables=0), "n_tables"),
    (lambda: MultiIndexHashing(130, n_tables=2), "n_tables"),
    (lambda: MultiIndexHashing(0), "n_bits"),
])
def test_bad_construction(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_bad_input_names_the_argument():
    rng = np.random.default_rng(4)
    mih = MultiIndexHashing(16, 2)
    with pytest.raises(ValueError, match="empty"):
        mih.search(random_codes(rng, 1, 16), 1)
    mih.add(random_codes(rng, 20, 16))
    with pytest.raises(ValueError, match="codes has codes of 8 bits"):
        mih.add(random_codes(rng, 3, 8))
    with pytest.raises(ValueError, match="codes must hold only -1 and \\+1"):
        mih.add(np.zeros((2, 16)))
    with pytest.raises(ValueError, match="radius=-1"):
        mih.range_search(random_codes(rng, 1, 16), -1)
    with pytest.raises(ValueError, match="radius=17"):
        mih.range_search(random_codes(rng, 1, 16), 17)
    with pytest.raises(ValueError, match="k=21"):
        mih.search(random_codes(rng, 1, 16), 21)
    with pytest.raises(ValueError, match="queries has codes of 15 bits"):
        mih.search(random_codes(rng, 1, 15), 1)
    with pytest.raises(ValueError, match="table="):
        mih.bucket_sizes(2)


def test_probe_blocks_split_the_queries(monkeypatch):
    from neurohash_lite import multi_index

    monkeypatch.setattr(multi_index, "_PROBE_BLOCK", 5)       # forces every lookup to split its queries
    rng = np.random.default_rng(5)
    db, queries = tie_heavy_codes(rng, 300, 20), random_codes(rng, 9, 20)
    exhaustive = HammingIndex(20, backend="numpy")
    exhaustive.add(db)
    mih = MultiIndexHashing(20, 3)
    mih.add(db)
    assert_same_knn(exhaustive, mih, queries, 25)
    for radius in (0, 4, 9):
        assert_same_range(exhaustive, mih, queries, radius)
