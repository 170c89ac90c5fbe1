"""HammingIndex's faiss k-NN keeps the numpy backend's ties, across faiss's internal blocks and threads."""

import numpy as np
import pytest

from neurohash_lite.retrieval import HammingIndex

faiss = pytest.importorskip("faiss")


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n_bits, n_db, n_prototypes", [(64, 150_000, 4), (128, 70_000, 30), (64, 3_000, 2)])
def test_faiss_search_equals_numpy_on_tie_heavy_codes(threads, n_bits, n_db, n_prototypes):
    rng = np.random.default_rng([n_bits, n_db])
    prototypes = np.where(rng.random((n_prototypes, n_bits)) < 0.5, np.int8(1), np.int8(-1))
    db = prototypes[rng.integers(0, n_prototypes, n_db)]
    db = np.where(rng.random(db.shape) < 0.01, -db, db).astype(np.int8)     # a few flips: ties at many distances
    queries = np.concatenate([prototypes, db[[5, n_db - 1]]])
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        fast = HammingIndex(n_bits, backend="faiss")
        fast.add(db)
        for k in (1, 10, 257):
            got = fast.search(queries, k)
            reference = HammingIndex(n_bits, backend="numpy")
            reference.add(db)
            expected = reference.search(queries, k)
            np.testing.assert_array_equal(got[0], expected[0])
            np.testing.assert_array_equal(got[1], expected[1])
            assert got[1].dtype == expected[1].dtype
    finally:
        faiss.omp_set_num_threads(previous)
