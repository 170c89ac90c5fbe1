"""Multi-index hashing: exact Hamming search that looks codes up instead of scanning them.

A linear scan (:class:`~neurohash_lite.retrieval.HammingIndex`) compares a
query with every stored code. Multi-index hashing (Norouzi, Punjani & Fleet,
CVPR 2012 / TPAMI 2014) splits each K-bit code into m disjoint substrings
and keeps one hash table per substring, mapping each substring value to the
codes that carry it. It rests on the pigeonhole principle: if two codes are
within Hamming distance r, then, writing r = r' m + a with 0 ≤ a < m,

    some substring z < a + 1 differs in at most r' bits, or
    some substring z ≥ a + 1 differs in at most r' - 1 bits

(were every substring further apart, the distance would be at least
(a + 1)(r' + 1) + (m - a - 1) r' = r + 1). So the codes within r of a query
are all among the *candidates* found by probing, in table z, every bucket
whose key lies within that small substring radius of the query's
substring; the candidates' full distances are then checked. Range search
probes once; k-NN search grows r by one bit at a time (each step widens one
table's radius by one) until k candidates lie within r, at which point no
code outside the candidates can be closer.

:class:`MultiIndexHashing` has the interface of ``HammingIndex`` (``add``,
``search``, ``range_search``) and returns exactly its results, ties ranked by
the order in which codes were added.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from neurohash_lite.retrieval import (
    RangeSearchResult,
    _as_code_array,
    _pack_checked,
    distance_dtype,
)

__all__ = ["MultiIndexHashing", "substring_bounds", "substring_radii"]

# Substrings longer than this would need keys wider than one machine word.
_MAX_SUBSTRING_BITS = 64
# n_tables=None keeps substrings at most this long (Norouzi et al. use about log2 N bits).
_AUTO_MAX_SUBSTRING_BITS = 32
# Queries searched together: one numpy call serves them all, and the candidate
# pairs of a block stay within memory.
_QUERY_BLOCK = 16
# Probed keys held at once by one table lookup (8 bytes each).
_PROBE_BLOCK = 1 << 22


def substring_bounds(n_bits: int, n_tables: int) -> list[tuple[int, int]]:
    """Split bits 0..K-1 into m contiguous substrings as equal as possible.

    The first K mod m substrings get ceil(K / m) bits, the others floor(K / m).

    Returns
    -------
    list of (start, stop)
        Bit ranges, m of them, covering 0..K-1.

    Raises
    ------
    ValueError
        If ``n_tables`` is not an integer in 1..n_bits.
    """
    if int(n_tables) != n_tables or not 1 <= n_tables <= n_bits:
        raise ValueError(f"n_tables={n_tables!r} must be an integer in 1..{n_bits} (n_bits)")
    base, extra = divmod(int(n_bits), int(n_tables))
    bounds, start = [], 0
    for z in range(int(n_tables)):
        stop = start + base + (1 if z < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def substring_radii(radius: int, n_tables: int) -> list[int]:
    """Per-table substring radius that guarantees every code within ``radius`` is a candidate.

    With r = r' m + a: tables 0..a get r', the others r' - 1 (-1: not probed).
    Norouzi, Punjani & Fleet (TPAMI 2014), Proposition 2.
    """
    r_prime, a = divmod(int(radius), int(n_tables))
    return [r_prime if z <= a else r_prime - 1 for z in range(int(n_tables))]


@functools.cache
def _flip_masks(n_bits: int, rho: int) -> np.ndarray:
    """All n_bits-bit masks with exactly rho bits set, as uint64 (C(n_bits, rho) of them)."""
    if rho == 0:
        return np.zeros(1, dtype=np.uint64)
    masks = [sum(1 << i for i in bits) for bits in itertools.combinations(range(n_bits), rho)]
    return np.array(masks, dtype=np.uint64)


def _big_endian_words(packed: np.ndarray) -> np.ndarray:
    """Packed bytes (n, B) → (n, W) uint64 whose bit 63 of word 0 is code entry 0."""
    n, n_bytes = packed.shape
    padded_bytes = -(-n_bytes // 8) * 8
    padded = np.zeros((n, padded_bytes), dtype=np.uint8)
    padded[:, :n_bytes] = packed
    return padded.view(">u8").astype(np.uint64)


def _substring_keys(words: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Integer value of code entries start..stop-1 (entry ``start`` most significant)."""
    keys = np.zeros(len(words), dtype=np.uint64)
    position = start
    while position < stop:
        w, offset = divmod(position, 64)
        take = min(stop - position, 64 - offset)
        mask = np.uint64((1 << take) - 1)
        chunk = (words[:, w] >> np.uint64(64 - offset - take)) & mask
        keys = chunk if take == 64 else (keys << np.uint64(take)) | chunk
        position += take
    return keys


def _native_words(packed: np.ndarray) -> np.ndarray:
    """Packed bytes (n, B) → (n, W) uint64 words for popcounts (zero padding)."""
    n, n_bytes = packed.shape
    padded = np.zeros((n, -(-n_bytes // 8) * 8), dtype=np.uint8)
    padded[:, :n_bytes] = packed
    return padded.view(np.uint64)


def _gather(ids: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Concatenate ids[starts[i]:stops[i]] over i, without a Python loop."""
    lengths = (stops - starts).astype(np.int64)
    keep = lengths > 0
    starts, lengths = starts[keep].astype(np.int64), lengths[keep]
    if len(lengths) == 0:
        return np.zeros(0, dtype=np.int64)
    total = int(lengths.sum())
    shift = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return ids[shift + np.arange(total)].astype(np.int64)


class _Table:
    """One hash table: bucket key → the ids of the codes whose substring has that key.

    Ids are stored once, grouped by key (ids ascending inside a bucket), in
    ``ids``; the b-th non-empty bucket (in key order) holds
    ``ids[offsets[b]:offsets[b+1]]``. A key is turned into its bucket number
    in one of two ways:

    - *bitmap* (when keys are dense enough, 2^s ≤ 32 × the keys in use):
      one bit per possible key says whether it is in use, and the bucket
      number is the *rank* of the key, the count of keys in use below it,
      read from a running count per 64-bit word plus a popcount inside the
      word (a sparse array in the spirit of Norouzi et al.). That costs
      about 1.5 bits per possible key;
    - *sorted* otherwise: the keys in use, sorted, found by binary search
      (8 bytes per key in use).
    """

    def __init__(self, keys: np.ndarray, n_bits: int):
        n = len(keys)
        self.n_bits = n_bits
        index_dtype = np.uint32 if n < 2**32 else np.int64
        order = np.argsort(keys, kind="stable").astype(index_dtype)
        sorted_keys = keys[order]
        self.ids = order
        firsts = np.flatnonzero(np.concatenate([[True], sorted_keys[1:] != sorted_keys[:-1]]))
        used = sorted_keys[firsts].astype(np.uint64)
        self.n_used = len(used)
        self.offsets = np.append(firsts, n).astype(index_dtype)
        self.bitmap = n_bits <= 32 and 2**n_bits <= 32 * max(self.n_used, 2048)
        if self.bitmap:
            n_words = -(-(2**n_bits) // 64)
            word_of = (used >> np.uint64(6)).astype(np.int64)
            bits = np.uint64(1) << (used & np.uint64(63))
            self.words = np.zeros(n_words, dtype=np.uint64)
            starts = np.flatnonzero(np.concatenate([[True], word_of[1:] != word_of[:-1]]))
            self.words[word_of[starts]] = np.add.reduceat(bits, starts)     # distinct bits: sum = OR
            self.rank = np.zeros(n_words, dtype=index_dtype)
            np.cumsum(np.bitwise_count(self.words)[:-1], out=self.rank[1:])
            self.used_keys = None
        else:
            self.used_keys = used.astype(np.uint32 if n_bits <= 32 else np.uint64)

    @property
    def n_buckets(self) -> int:
        """Non-empty buckets."""
        return self.n_used

    def bucket_sizes(self) -> np.ndarray:
        return np.diff(self.offsets.astype(np.int64))

    def nbytes(self) -> int:
        directory = (self.words.nbytes + self.rank.nbytes) if self.bitmap else self.used_keys.nbytes
        return self.ids.nbytes + self.offsets.nbytes + directory

    def _keys_in_use(self) -> np.ndarray:
        if not self.bitmap:
            return self.used_keys.astype(np.uint64)
        bits = np.unpackbits(self.words.view(np.uint8), bitorder="little")
        return np.flatnonzero(bits).astype(np.uint64)

    def _find(self, probes: np.ndarray) -> np.ndarray:
        """Bucket number of each probed key, -1 where no code has that key."""
        if self.bitmap:
            word_of = (probes >> np.uint64(6)).astype(np.int64)
            shift = probes & np.uint64(63)
            word = self.words[word_of]
            present = ((word >> shift) & np.uint64(1)).astype(bool)
            below = np.bitwise_count(word & ((np.uint64(1) << shift) - np.uint64(1)))
            return np.where(present, self.rank[word_of].astype(np.int64) + below, -1)
        probes = probes.astype(self.used_keys.dtype)
        position = np.searchsorted(self.used_keys, probes)
        position[position == len(self.used_keys)] = 0
        return np.where(self.used_keys[position] == probes, position, -1)

    def shell(self, query_keys: np.ndarray, rho: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Codes whose key is at exactly Hamming distance rho from each query's key.

        Enumerates, for every query, the C(s, rho) keys at that distance and
        looks them up; when that is more than the keys in use, compares each
        query with every key in use instead.

        Parameters
        ----------
        query_keys : numpy.ndarray, shape (Q,), uint64
        rho : int

        Returns
        -------
        rows : numpy.ndarray, shape (n,), int64
            For each hit, the position of its query in ``query_keys``.
        ids : numpy.ndarray, shape (n,), int64
            The codes found, grouped by query.
        n_probes : int
            Keys looked up or compared, over all queries.
        """
        n_probes = math.comb(self.n_bits, rho)
        n_queries = len(query_keys)
        if n_queries > 1 and n_probes * n_queries > _PROBE_BLOCK:     # bound the probe arrays' memory
            half = n_queries // 2
            first, second = self.shell(query_keys[:half], rho), self.shell(query_keys[half:], rho)
            return (np.concatenate([first[0], second[0] + half]), np.concatenate([first[1], second[1]]),
                    first[2] + second[2])
        if n_probes <= self.n_used:
            probes = (_flip_masks(self.n_bits, rho)[None, :] ^ query_keys[:, None]).reshape(-1)
            rows = np.repeat(np.arange(n_queries), n_probes)
            buckets = self._find(probes)
            rows, buckets = rows[buckets >= 0], buckets[buckets >= 0]
        else:
            keys = self._keys_in_use()
            rows, buckets = [], []
            for i, key in enumerate(query_keys):
                hit = np.flatnonzero(np.bitwise_count(keys ^ key) == rho)
                rows.append(np.full(len(hit), i))
                buckets.append(hit)
            rows, buckets = np.concatenate(rows).astype(np.int64), np.concatenate(buckets).astype(np.int64)
            n_probes = self.n_used
        starts, stops = self.offsets[buckets].astype(np.int64), self.offsets[buckets + 1].astype(np.int64)
        return np.repeat(rows, stops - starts), _gather(self.ids, starts, stops), n_probes * n_queries


class MultiIndexHashing:
    """Exact Hamming search by multi-index hashing, with ``HammingIndex``'s interface and results.

    Parameters
    ----------
    n_bits : int
        The code length K.
    n_tables : int, optional
        m, the number of substrings and hash tables, 1 ≤ m ≤ K, with
        substrings of at most 64 bits. None (default) picks
        m = round(K / log2 N) when the tables are built (Norouzi et al.'s
        choice: substrings of about log2 N bits), at least ceil(K / 32).

    Notes
    -----
    ``add`` only stores the packed codes; the tables are (re)built by the
    next ``search`` or ``range_search``, or by :meth:`build`. After each
    search, ``last_stats`` holds the keys looked at (``probes``) and the
    candidate codes whose full distance was computed (``candidates``),
    summed over the queries.

    References
    ----------
    Norouzi, Punjani & Fleet, "Fast Search in Hamming Space with Multi-Index
    Hashing", CVPR 2012, and "Fast Exact Search in Hamming Space with
    Multi-Index Hashing", IEEE TPAMI 36(6), 2014 (Proposition 2, Algorithm 1).

    Examples
    --------
    >>> index = MultiIndexHashing(n_bits=4, n_tables=2)
    >>> index.add([[1, 1, 1, 1], [1, 1, -1, -1], [-1, 1, 1, 1]])
    >>> index.search([[1, 1, 1, 1]], k=2)[0]
    array([[0, 2]])
    """

    def __init__(self, n_bits: int, n_tables: int | None = None):
        if int(n_bits) != n_bits or n_bits < 1:
            raise ValueError(f"n_bits={n_bits!r} must be a positive integer")
        self.n_bits = int(n_bits)
        if n_tables is not None:
            bounds = substring_bounds(self.n_bits, n_tables)
            longest = max(stop - start for start, stop in bounds)
            if longest > _MAX_SUBSTRING_BITS:
                raise ValueError(
                    f"n_tables={n_tables} leaves substrings of {longest} bits; use at least "
                    f"{-(-self.n_bits // _MAX_SUBSTRING_BITS)} tables for {self.n_bits}-bit codes"
                )
        self._requested_tables = None if n_tables is None else int(n_tables)
        self._n_bytes = (self.n_bits + 7) // 8
        self._packed_parts: list[np.ndarray] = []
        self._ntotal = 0
        self._words = np.zeros((0, -(-self._n_bytes // 8)), dtype=np.uint64)
        self._tables: list[_Table] | None = None
        self.bounds: list[tuple[int, int]] = []
        self.last_stats = {"probes": 0, "candidates": 0}

    # ---------------------------------------------------------------- storage
    @property
    def ntotal(self) -> int:
        """Number of codes in the index."""
        return self._ntotal

    def __len__(self) -> int:
        return self._ntotal

    @property
    def n_tables(self) -> int | None:
        """m: the requested number of tables, or the one chosen at the last build."""
        return self._requested_tables if self._requested_tables is not None else (len(self.bounds) or None)

    def __repr__(self) -> str:
        return f"MultiIndexHashing(n_bits={self.n_bits}, n_tables={self.n_tables}, ntotal={self.ntotal})"

    def _check_codes(self, codes, name: str) -> np.ndarray:
        array = _as_code_array(codes, name)
        if array.shape[1] != self.n_bits:
            raise ValueError(f"{name} has codes of {array.shape[1]} bits; this index holds {self.n_bits}-bit codes")
        return _pack_checked(array, name)

    def add(self, codes) -> None:
        """Append ±1 codes of shape (n, K); they get indices ntotal .. ntotal + n - 1."""
        self.add_packed(self._check_codes(codes, "codes"))

    def add_packed(self, packed) -> None:
        """Append codes already packed by :func:`~neurohash_lite.retrieval.pack_codes`, shape (n, ceil(K/8)) uint8."""
        packed = np.asarray(packed)
        if packed.dtype != np.uint8 or packed.ndim != 2 or packed.shape[1] != self._n_bytes:
            raise ValueError(f"packed must be a 2-D uint8 array with {self._n_bytes} bytes per code; "
                             f"got {packed.dtype} {packed.shape}")
        if self.n_bits % 8 and np.any(packed[:, -1] & np.uint8((1 << (8 - self.n_bits % 8)) - 1)):
            raise ValueError("packed has padding bits set in its last byte; pack with pack_codes")
        self._packed_parts.append(np.ascontiguousarray(packed))
        self._ntotal += len(packed)
        self._tables = None

    def _packed(self) -> np.ndarray:
        if len(self._packed_parts) > 1:
            self._packed_parts = [np.concatenate(self._packed_parts)]
        return self._packed_parts[0] if self._packed_parts else np.zeros((0, self._n_bytes), np.uint8)

    def build(self) -> None:
        """Build the m hash tables from the stored codes (done by the first search after ``add``)."""
        packed = self._packed()
        m = self._requested_tables
        if m is None:
            m = round(self.n_bits / math.log2(max(self._ntotal, 2)))
            m = min(self.n_bits, max(m, 1, -(-self.n_bits // _AUTO_MAX_SUBSTRING_BITS)))
        self.bounds = substring_bounds(self.n_bits, m)
        self._words = _native_words(packed)
        big_endian = _big_endian_words(packed)
        self._tables = [_Table(_substring_keys(big_endian, start, stop), stop - start)
                        for start, stop in self.bounds]

    def _ready(self) -> list[_Table]:
        if self._ntotal == 0:
            raise ValueError("the index is empty; add codes before searching")
        if self._tables is None:
            self.build()
        return self._tables

    def memory_bytes(self) -> dict[str, int]:
        """Bytes held: ``codes`` (packed), ``tables`` (ids and bucket directories), ``total``."""
        codes = self._ntotal * self._n_bytes
        tables = sum(table.nbytes() for table in self._ready())
        return {"codes": codes, "tables": tables, "total": codes + tables}

    def bucket_sizes(self, table: int = 0) -> np.ndarray:
        """Number of codes in each non-empty bucket of table ``table``, shape (n_buckets,)."""
        tables = self._ready()
        if int(table) != table or not 0 <= table < len(tables):
            raise ValueError(f"table={table!r} must be an integer in 0..{len(tables) - 1}")
        return tables[int(table)].bucket_sizes()

    # ---------------------------------------------------------------- search
    def _query_keys(self, query_packed: np.ndarray) -> np.ndarray:
        big_endian = _big_endian_words(query_packed)
        return np.stack([_substring_keys(big_endian, start, stop) for start, stop in self.bounds], axis=1)

    def _substring_masks(self) -> np.ndarray:
        """(m, W) uint64: the bits of each substring, in the layout of the stored words."""
        masks = -np.ones((len(self.bounds), self.n_bits), dtype=np.int8)
        for z, (start, stop) in enumerate(self.bounds):
            masks[z, start:stop] = 1
        return _native_words(_pack_checked(masks, "masks"))

    def _verify(self, rows, ids, query_words, radii_before, masks):
        """Full distances of candidate pairs, and which pairs no earlier probe found.

        A pair (query, code) was found before exactly when, in some table z
        already probed up to radius ``radii_before[z]``, the code's substring
        lies within that radius of the query's: the substring distances,
        popcounts of the XOR under each substring's mask, decide it without
        remembering what was found.
        """
        xor = self._words[ids] ^ query_words[rows]                  # (n, W)
        distance = np.bitwise_count(xor).sum(axis=1, dtype=np.int64)
        fresh = np.ones(len(ids), dtype=bool)
        for z, radius in enumerate(radii_before):
            if radius >= 0:
                fresh &= np.bitwise_count(xor & masks[z]).sum(axis=1, dtype=np.int64) > radius
        return distance, fresh

    def _blocks(self, n_queries: int):
        """Query blocks, small enough to bound the candidate pairs held at once."""
        step = max(1, min(n_queries, _QUERY_BLOCK))
        for start in range(0, n_queries, step):
            yield np.arange(start, min(n_queries, start + step))

    def search(self, queries, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest codes of each query, exactly as ``HammingIndex.search``.

        The search radius r grows from 0 one bit at a time, for a block of
        queries at once; each step probes one more shell of one table
        (:func:`substring_radii`). A query is done once k of its candidates
        lie within r: every code within r is then a candidate, so its k
        nearest, ties by index, are among them.

        Parameters
        ----------
        queries : array_like or torch.Tensor, shape (Q, K)
            ±1 query codes.
        k : int
            Neighbours per query, 1 ≤ k ≤ ntotal.

        Returns
        -------
        indices : numpy.ndarray, shape (Q, k), int64
            Database indices sorted by distance, ties by index.
        distances : numpy.ndarray, shape (Q, k), uint8 or uint16
            Their Hamming distances.
        """
        query_packed = self._check_codes(queries, "queries")
        tables = self._ready()
        if int(k) != k or not 1 <= k <= self.ntotal:
            raise ValueError(f"k={k!r} must be an integer in 1..{self.ntotal} (the codes in the index)")
        k, m, n_bits = int(k), len(tables), self.n_bits
        query_keys, query_words = self._query_keys(query_packed), _native_words(query_packed)
        masks = self._substring_masks()
        indices = np.empty((len(query_packed), k), dtype=np.int64)
        distances = np.empty((len(query_packed), k), dtype=distance_dtype(n_bits))
        probes = candidates = 0
        for block in self._blocks(len(query_packed)):
            active = np.arange(len(block))                          # positions in the block
            counts = np.zeros((len(block), n_bits + 1), dtype=np.int64)
            found = []                                              # (row, id, distance) per shell
            probed = [-1] * m
            for radius in range(n_bits + 1):
                for z, need in enumerate(substring_radii(radius, m)):
                    while probed[z] < min(need, tables[z].n_bits):
                        rho = probed[z] + 1
                        rows, ids, n_probes = tables[z].shell(query_keys[block[active], z], rho)
                        rows = active[rows]
                        probes += n_probes
                        d, fresh = self._verify(rows, ids, query_words[block], probed, masks)
                        rows, ids, d = rows[fresh], ids[fresh], d[fresh]
                        candidates += len(ids)
                        np.add.at(counts, (rows, d), 1)
                        found.append((rows, ids, d))
                        probed[z] = rho
                done = counts[active, : radius + 1].sum(axis=1) >= k
                active = active[~done]                              # every code within radius is found
                if len(active) == 0:
                    break
            rows = np.concatenate([f[0] for f in found])
            ids = np.concatenate([f[1] for f in found])
            d = np.concatenate([f[2] for f in found])
            order = np.lexsort((ids, d, rows))
            first = np.searchsorted(rows[order], np.arange(len(block)))
            take = order[first[:, None] + np.arange(k)]
            indices[block], distances[block] = ids[take], d[take]
        self.last_stats = {"probes": probes, "candidates": candidates}
        return indices, distances

    def range_search(self, queries, radius: int) -> RangeSearchResult:
        """Every code within Hamming distance ``radius`` (inclusive), exactly as ``HammingIndex.range_search``.

        Table z is probed up to its radius from :func:`substring_radii`; a
        candidate is kept once, by the first table that finds it.

        Parameters
        ----------
        queries : array_like or torch.Tensor, shape (Q, K)
            ±1 query codes.
        radius : int
            0 ≤ radius ≤ K.

        Returns
        -------
        RangeSearchResult
            Hits sorted by distance, ties by index.
        """
        query_packed = self._check_codes(queries, "queries")
        if int(radius) != radius or not 0 <= radius <= self.n_bits:
            raise ValueError(f"radius={radius!r} must be an integer in 0..{self.n_bits}")
        tables = self._ready()
        radius = int(radius)
        query_keys, query_words = self._query_keys(query_packed), _native_words(query_packed)
        masks = self._substring_masks()
        radii = [min(r, table.n_bits) for r, table in zip(substring_radii(radius, len(tables)), tables)]
        dtype = distance_dtype(self.n_bits)
        hits = []
        probes = candidates = 0
        for block in self._blocks(len(query_packed)):
            for z, table in enumerate(tables):
                for rho in range(radii[z] + 1):
                    rows, ids, n_probes = table.shell(query_keys[block, z], rho)
                    probes += n_probes
                    candidates += len(ids)
                    earlier = [radii[y] if y < z else -1 for y in range(len(tables))]
                    d, fresh = self._verify(rows, ids, query_words[block], earlier, masks)
                    keep = fresh & (d <= radius)
                    hits.append((block[rows[keep]], ids[keep], d[keep]))
        rows = np.concatenate([h[0] for h in hits]) if hits else np.zeros(0, np.int64)
        ids = np.concatenate([h[1] for h in hits]) if hits else np.zeros(0, np.int64)
        d = np.concatenate([h[2] for h in hits]) if hits else np.zeros(0, np.int64)
        order = np.lexsort((ids, d, rows))
        self.last_stats = {"probes": probes, "candidates": candidates}
        lims = np.zeros(len(query_packed) + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=len(query_packed)), out=lims[1:])
        return RangeSearchResult(lims=lims, indices=ids[order].astype(np.int64), distances=d[order].astype(dtype))
