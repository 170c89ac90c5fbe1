"""Packed codes and the Hamming index: every backend returns the same integers."""

import contextlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurohash_lite import retrieval
from neurohash_lite.metrics import hamming_distance
from neurohash_lite.retrieval import (
    HammingIndex,
    check_codes,
    pack_codes,
    packed_hamming_distance,
    unpack_codes,
)



def random_codes(rng, n, n_bits):
    return np.where(rng.random((n, n_bits)) < 0.5, -1, 1).astype(np.int8)


def brute_force_ranking(queries, db):
    """Indices of db sorted by (distance, index) for every query, and the distances."""
    distance = (queries.shape[1] - queries.astype(np.int64) @ db.astype(np.int64).T) // 2
    order = np.array([np.lexsort((np.arange(len(db)), row)) for row in distance])
    return order, np.take_along_axis(distance, order, axis=1)


def skip_without(backend):
    if backend == "faiss":
        pytest.importorskip("faiss")


# --------------------------------------------------------------------------
# Packing
# --------------------------------------------------------------------------
def test_pack_codes_layout():
    codes = np.array([[1, -1, -1, -1, -1, -1, -1, -1, 1, 1]])
    packed = pack_codes(codes)
    assert packed.dtype == np.uint8 and packed.shape == (1, 2)
    np.testing.assert_array_equal(packed, [[0b10000000, 0b11000000]])   # big-endian bits, zero padding


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 200), st.integers(1, 20), st.integers(0, 2**32 - 1))
def test_unpack_inverts_pack(n_bits, n, seed):
    codes = random_codes(np.random.default_rng(seed), n, n_bits)
    np.testing.assert_array_equal(unpack_codes(pack_codes(codes), n_bits), codes)


def test_pack_accepts_torch_and_floats():
    codes = np.array([[1, -1, 1], [-1, -1, 1]])
    expected = pack_codes(codes)
    np.testing.assert_array_equal(pack_codes(torch.tensor(codes, dtype=torch.float32)), expected)
    np.testing.assert_array_equal(pack_codes(codes.astype(np.float64)), expected)


@pytest.mark.parametrize("codes, message", [
    (np.array([[1, 0, -1]]), "only -1 and \\+1"),
    (np.array([[1, 3, -1]]), "only -1 and \\+1"),
    (np.array([[1.0, np.inf]]), "only -1 and \\+1"),
    (np.zeros((0, 4)), "empty"),
    (np.ones(4), "shape"),
])
def test_pack_and_check_reject_non_codes(codes, message):
    with pytest.raises(ValueError, match=message):
        pack_codes(codes)
    with pytest.raises(ValueError, match=message):
        check_codes(codes)


# The checking and packing fast paths (int8 byte trick, reductions for other
# dtypes) against the literal definition, in several blocks.
CODE_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64]
NOT_SIGNS = [
    (np.int8, 0), (np.int8, 2), (np.int8, -2), (np.int8, 127), (np.int8, -128),
    (np.int16, 0), (np.int16, 255), (np.int16, -256), (np.int64, 3),
    (np.uint8, 0), (np.uint8, 255), (np.bool_, False),
    (np.float32, 0.0), (np.float32, -0.0), (np.float32, 0.5), (np.float32, np.inf),
    (np.float64, np.nan), (np.float64, -1.5), (np.float64, 1e-300),
]


def literal_pack(codes):
    """One bit per entry, +1 → 1, big-endian within a byte: what pack_codes promises."""
    return np.packbits(np.asarray(codes) == 1, axis=1)


@contextlib.contextmanager
def block_entries(entries):
    """Check and pack in blocks of ``entries`` entries, so that tests cross block edges."""
    saved, retrieval._BLOCK_ENTRIES = retrieval._BLOCK_ENTRIES, entries
    try:
        yield
    finally:
        retrieval._BLOCK_ENTRIES = saved


def with_layout(codes, layout):
    """The same codes as a C-ordered, Fortran-ordered or strided (non-contiguous) array."""
    if layout == "fortran":
        return np.asfortranarray(codes)
    if layout == "every_other_bit":
        wide = np.repeat(codes, 2, axis=1)
        wide[:, 1::2] = 7                      # never read
        return wide[:, ::2]
    if layout == "every_other_row":
        tall = np.repeat(codes, 2, axis=0)
        tall[1::2] = 7
        return tall[::2]
    return codes


@settings(max_examples=150, deadline=None)
@given(n_bits=st.sampled_from([1, 5, 8, 16, 24, 32, 40, 63, 64, 72, 100, 128, 200, 256]),
       n=st.integers(1, 30), dtype=st.sampled_from(CODE_DTYPES),
       layout=st.sampled_from(["c", "fortran", "every_other_bit", "every_other_row"]),
       block=st.sampled_from([1, 100, 1 << 20]), seed=st.integers(0, 2**32 - 1))
def test_pack_equals_packbits_of_the_plus_entries(n_bits, n, dtype, layout, block, seed):
    codes = with_layout(random_codes(np.random.default_rng(seed), n, n_bits).astype(dtype), layout)
    with block_entries(block):
        packed = pack_codes(codes)
        assert check_codes(codes) is not None
    np.testing.assert_array_equal(packed, literal_pack(codes))


def test_pack_of_all_plus_codes_in_unsigned_and_boolean_dtypes():
    for dtype in (np.uint8, np.uint16, np.bool_):
        codes = np.ones((3, 12), dtype=dtype)
        np.testing.assert_array_equal(pack_codes(codes), [[0xFF, 0xF0]] * 3)


@settings(max_examples=150, deadline=None)
@given(bad=st.sampled_from(NOT_SIGNS), n_bits=st.sampled_from([3, 8, 64, 72, 128]),
       n=st.integers(1, 40), block=st.sampled_from([1, 100, 1 << 20]),
       layout=st.sampled_from(["c", "fortran", "every_other_bit"]), data=st.data())
def test_the_first_entry_that_is_not_a_sign_is_named(bad, n_bits, n, block, layout, data):
    dtype, value = bad
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    codes = np.ones((n, n_bits), dtype=dtype) if dtype in (np.uint8, np.bool_) else \
        random_codes(rng, n, n_bits).astype(dtype)
    row, bit = data.draw(st.integers(0, n - 1)), data.draw(st.integers(0, n_bits - 1))
    codes[row, bit] = value
    if row + 1 < n:                            # a later bad entry must not be the one named
        codes[data.draw(st.integers(row + 1, n - 1)), data.draw(st.integers(0, n_bits - 1))] = value
    codes = with_layout(codes, layout)
    expected = (f"codes must hold only -1 and +1 (sign codes, see sign_codes); "
                f"found {codes[row, bit]!r} at row {row}, bit {bit}")
    with block_entries(block):
        for check in (pack_codes, check_codes):
            with pytest.raises(ValueError) as error:
                check(codes)
            assert str(error.value) == expected


def test_unpack_rejects_a_wrong_width():
    with pytest.raises(ValueError, match="does not hold n_bits=20"):
        unpack_codes(np.zeros((2, 2), np.uint8), 20)


# --------------------------------------------------------------------------
# Distance kernels
# --------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numpy", "torch", "faiss", "auto"])
@pytest.mark.parametrize("n_bits", [1, 7, 8, 16, 24, 32, 40, 64, 72, 128, 255, 300])
def test_every_kernel_equals_the_inner_product_formula(backend, n_bits):
    skip_without(backend)
    rng = np.random.default_rng(n_bits)
    big = n_bits == 64                      # several tiles of queries and of database codes
    queries, db = random_codes(rng, 40 if big else 7, n_bits), random_codes(rng, 70_001 if big else 33, n_bits)
    distance = packed_hamming_distance(pack_codes(queries), pack_codes(db), n_bits, backend)
    assert distance.dtype == (np.uint8 if n_bits <= 255 else np.uint16)
    np.testing.assert_array_equal(distance, (n_bits - queries.astype(np.int64) @ db.T.astype(np.int64)) // 2)


@pytest.mark.parametrize("backend", ["numpy", "torch", "faiss"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32, np.int64])
def test_every_kernel_writes_into_a_given_out(backend, dtype):
    skip_without(backend)
    rng = np.random.default_rng(3)
    queries, db = random_codes(rng, 5, 128), random_codes(rng, 2_500, 128)   # several faiss tiles
    expected = (128 - queries.astype(np.int64) @ db.T.astype(np.int64)) // 2
    out = np.full((5, 2_500), 99, dtype=dtype)
    assert packed_hamming_distance(pack_codes(queries), pack_codes(db), 128, backend, out=out) is out
    np.testing.assert_array_equal(out, expected)
    strided = np.full((5, 2 * 2_500), 99, dtype=dtype)[:, ::2]        # a view: written through
    packed_hamming_distance(pack_codes(queries), pack_codes(db), 128, backend, out=strided)
    np.testing.assert_array_equal(strided, expected)


def test_packed_distance_rejects_an_out_that_does_not_fit():
    query_packed, db_packed = np.zeros((2, 1), np.uint8), np.zeros((3, 1), np.uint8)
    with pytest.raises(ValueError, match=r"out has shape \(3, 2\); the distances need shape \(2, 3\)"):
        packed_hamming_distance(query_packed, db_packed, 8, out=np.zeros((3, 2), np.uint8))
    with pytest.raises(ValueError, match="out has dtype int8, which does not hold every distance 0..8"):
        packed_hamming_distance(query_packed, db_packed, 8, out=np.zeros((2, 3), np.int8))
    with pytest.raises(ValueError, match="out has dtype float32"):
        packed_hamming_distance(query_packed, db_packed, 8, out=np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="does not hold every distance 0..300"):
        packed_hamming_distance(np.zeros((2, 38), np.uint8), np.zeros((3, 38), np.uint8), 300,
                                out=np.zeros((2, 3), np.uint8))
    with pytest.raises(ValueError, match="out must be a numpy array"):
        packed_hamming_distance(query_packed, db_packed, 8, out=[[0, 0, 0], [0, 0, 0]])
    read_only = np.zeros((2, 3), np.uint8)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        packed_hamming_distance(query_packed, db_packed, 8, out=read_only)


@pytest.mark.parametrize("n_bits", [0, -8, 9, 17])
def test_packed_distance_rejects_a_code_length_the_bytes_do_not_hold(n_bits):
    with pytest.raises(ValueError, match=f"n_bits={n_bits} does not match the packed codes' 1 bytes"):
        packed_hamming_distance(np.zeros((2, 1), np.uint8), np.zeros((3, 1), np.uint8), n_bits)


def test_packed_distance_rejects_mismatched_widths():
    with pytest.raises(ValueError, match="code lengths differ"):
        packed_hamming_distance(np.zeros((1, 2), np.uint8), np.zeros((3, 4), np.uint8))
    with pytest.raises(ValueError, match="db_packed must be"):
        packed_hamming_distance(np.zeros((1, 2), np.uint8), np.zeros((3, 2), np.int8))


# --------------------------------------------------------------------------
# The index
# --------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numpy", "torch", "faiss"])
@pytest.mark.parametrize("n_bits", [4, 13, 64, 128])
def test_search_is_brute_force_with_ties_by_index(backend, n_bits):
    skip_without(backend)
    rng = np.random.default_rng(n_bits)
    db, queries = random_codes(rng, 300, n_bits), random_codes(rng, 11, n_bits)
    index = HammingIndex(n_bits, backend=backend)
    index.add(db[:120])
    index.add(torch.from_numpy(db[120:]))             # several batches, torch input
    assert index.ntotal == len(index) == 300 and index.backend == backend
    order, distance = brute_force_ranking(queries, db)
    for k in (1, 7, 300):
        indices, distances = index.search(queries, k)
        assert indices.dtype == np.int64 and indices.shape == (11, k)
        np.testing.assert_array_equal(indices, order[:, :k])
        np.testing.assert_array_equal(distances, distance[:, :k])


@pytest.mark.parametrize("backend", ["numpy", "torch", "faiss"])
def test_range_search_is_brute_force(backend):
    skip_without(backend)
    n_bits = 12
    rng = np.random.default_rng(0)
    db, queries = random_codes(rng, 200, n_bits), random_codes(rng, 6, n_bits)
    index = HammingIndex(n_bits, backend=backend)
    index.add(db)
    order, distance = brute_force_ranking(queries, db)
    for radius in (0, 3, 6, n_bits):
        result = index.range_search(queries, radius)
        assert len(result) == 6 and result.lims[-1] == (distance <= radius).sum()
        for q in range(6):
            hits, hit_distances = result[q]
            inside = distance[q] <= radius
            np.testing.assert_array_equal(hits, order[q][inside])
            np.testing.assert_array_equal(hit_distances, distance[q][inside])


@pytest.mark.parametrize("n_bits", [16, 64, 100])
def test_all_backends_agree_on_a_tie_heavy_database(n_bits):
    """Codes drawn from 5 prototypes: huge tie groups, the hardest case for stable order."""
    rng = np.random.default_rng(1)
    prototypes = random_codes(rng, 5, n_bits)
    db = prototypes[rng.integers(0, 5, 2000)]
    queries = prototypes[rng.integers(0, 5, 4)]
    backends = ["numpy", "torch"] + (["faiss"] if _has_faiss() else [])
    results = []
    for backend in backends:
        index = HammingIndex(n_bits, backend=backend)
        index.add(db)
        results.append((index.search(queries, 500), index.range_search(queries, n_bits // 4)))
    for (search, ranged) in results[1:]:
        np.testing.assert_array_equal(search[0], results[0][0][0])
        np.testing.assert_array_equal(search[1], results[0][0][1])
        np.testing.assert_array_equal(ranged.indices, results[0][1].indices)
        np.testing.assert_array_equal(ranged.lims, results[0][1].lims)


_ON_CUDA = pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"))


@pytest.mark.parametrize("device", ["cpu", _ON_CUDA])
@pytest.mark.parametrize("n_bits", [13, 64, 100])
def test_torch_backend_on_a_device_matches_numpy(n_bits, device):
    # The same check on the CPU and on a GPU, so that its body has run even
    # where no GPU is present: codes added in two batches (the second as a
    # tensor on the device), a tie-heavy half, k-NN and range search.
    rng = np.random.default_rng(n_bits)
    db, queries = random_codes(rng, 5000, n_bits), random_codes(rng, 20, n_bits)
    db[2500:] = db[rng.integers(0, 40, 2500)]           # a tie-heavy half: 40 codes repeated
    queries[10:] = db[rng.integers(0, 40, 10)]          # queries that sit on those repeated codes
    on_device, on_numpy = HammingIndex(n_bits, backend="torch", device=device), HammingIndex(n_bits, backend="numpy")
    assert on_device.device.type == device
    on_device.add(db[:3000])
    on_device.add(torch.from_numpy(db[3000:]).to(device))
    on_numpy.add(db[:3000])
    on_numpy.add(db[3000:])
    queries_on_device = torch.from_numpy(queries).to(device)
    for a, b in zip(on_device.search(queries_on_device, 100), on_numpy.search(queries, 100)):
        np.testing.assert_array_equal(a, b)
    device_hits = on_device.range_search(queries_on_device, n_bits // 3)
    numpy_hits = on_numpy.range_search(queries, n_bits // 3)
    assert len(numpy_hits.indices) > 500                 # many hits, most of them tied
    for field in ("lims", "indices", "distances"):
        np.testing.assert_array_equal(getattr(device_hits, field), getattr(numpy_hits, field))
    np.testing.assert_array_equal(
        hamming_distance(queries_on_device, torch.from_numpy(db).to(device)),
        hamming_distance(queries, db),
    )


def _has_faiss():
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def test_index_rejects_bad_calls():
    index = HammingIndex(8, backend="numpy")
    with pytest.raises(ValueError, match="index is empty"):
        index.search(np.ones((1, 8)), 1)
    index.add(np.ones((3, 8)))
    with pytest.raises(ValueError, match="k=4 must be an integer in 1..3"):
        index.search(np.ones((1, 8)), 4)
    with pytest.raises(ValueError, match="k=0"):
        index.search(np.ones((1, 8)), 0)
    with pytest.raises(ValueError, match="queries has codes of 9 bits"):
        index.search(np.ones((1, 9)), 1)
    with pytest.raises(ValueError, match="codes must hold only"):
        index.add(np.zeros((1, 8)))
    with pytest.raises(ValueError, match="radius=9"):
        index.range_search(np.ones((1, 8)), 9)
    with pytest.raises(ValueError, match="backend="):
        HammingIndex(8, backend="annoy")
    with pytest.raises(ValueError, match="n_bits"):
        HammingIndex(0)


def test_index_on_cuda_without_a_gpu_says_so(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)   # also where a GPU is present
    with pytest.raises(ValueError, match="device='cuda', but torch sees no CUDA GPU"):
        HammingIndex(8, backend="torch", device="cuda")
