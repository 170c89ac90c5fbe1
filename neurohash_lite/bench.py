"""Benchmarks of the package, one sub-command each.

    python -m neurohash_lite.bench retrieval            # distances and mAP at Q=100, N up to 1e6
    python -m neurohash_lite.bench retrieval --db-sizes 10000 --bits 64
    python -m neurohash_lite.bench archive              # scans, multi-index hashing, faiss at N up to 1e6

Each sub-command is a function ``run_<name>(args)`` plus a sub-parser made
by ``add_<name>_parser(commands)``; :func:`main` wires them together. The
figures are wall-clock times on whatever machine runs them, best of a few
repeats; they are printed, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from typing import Callable

import numpy as np

from neurohash_lite import metrics, retrieval

__all__ = ["main", "peak_rss_mb", "run_retrieval", "run_train_ahs", "sort_based_map", "synthetic_codes",
           "time_training_steps", "training_devices"]


# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------
def best_time(function: Callable[[], object], repeats: int, budget_s: float = 2.0,
              min_total_s: float = 0.2, max_runs: int = 1000) -> float:
    """Best wall-clock time in seconds of ``function()`` over several runs.

    Runs at least ``repeats`` times and, for fast functions, keeps going
    until the runs took ``min_total_s`` (at most ``max_runs`` runs), so that
    a 0.1 ms call is the best of hundreds of tries rather than of three;
    stops once the runs took ``budget_s``, so slow references run once.
    """
    best, spent, runs = float("inf"), 0.0, 0
    while runs < max(1, repeats) or (spent < min_total_s and runs < max_runs):
        start = time.perf_counter()
        function()
        elapsed = time.perf_counter() - start
        best, spent, runs = min(best, elapsed), spent + elapsed, runs + 1
        if spent > budget_s:
            break
    return best


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB.

    Linux's ``VmHWM`` where ``/proc`` has it: it belongs to this process
    image, whereas ``ru_maxrss`` carries the parent's peak over ``exec`` (the
    memory probe below runs in a child). Elsewhere ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    scale = 2**20 if sys.platform == "darwin" else 2**10
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def synthetic_codes(n: int, n_bits: int, rng: np.random.Generator, n_classes: int = 3,
                    flip: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Class-prototype codes with bit noise, generated in int8 blocks.

    Returns ``codes`` (n, n_bits) int8 ±1 and ``labels`` (n,) int64: each
    item copies its class's random prototype and flips each bit with
    probability ``flip``. No float array of the full size is ever made.
    """
    prototypes = np.where(rng.random((n_classes, n_bits)) < 0.5, np.int8(-1), np.int8(1))
    labels = rng.integers(0, n_classes, n)
    codes = np.empty((n, n_bits), dtype=np.int8)
    for start in range(0, n, 1 << 16):
        stop = min(n, start + (1 << 16))
        flips = rng.random((stop - start, n_bits)) < flip
        codes[start:stop] = np.where(flips, -prototypes[labels[start:stop]], prototypes[labels[start:stop]])
    return codes, labels


# --------------------------------------------------------------------------
# retrieval: Hamming distances and mAP
# --------------------------------------------------------------------------
def sort_based_map(query_codes: np.ndarray, db_codes: np.ndarray, query_labels: np.ndarray,
                   db_labels: np.ndarray, distances: str = "float") -> float:
    """mAP@ALL the way the public hashing repositories compute it.

    Per query: the distances to the whole database, a stable argsort, the
    relevance in ranked order, then precision at every relevant rank. Ties
    are ranked by database index, so the result equals
    ``mean_average_precision(..., ties="index")``.

    Parameters
    ----------
    distances : {"float", "uint8"}
        "float": d = (K - <q, x>)/2 from a float32 matrix-vector product, as
        those repositories do (their argsort then sorts floats); "uint8": the
        package's packed distances, so the argsort is numpy's radix sort (the
        fastest sort-based variant).
    """
    n_bits = db_codes.shape[1]
    aps = []
    if distances == "float":
        db_float = db_codes.astype(np.float32)
        rows = ((i, 0.5 * (n_bits - db_float @ query_codes[i].astype(np.float32)))
                for i in range(len(query_codes)))
    else:
        db_packed = retrieval.pack_codes(db_codes)
        query_packed = retrieval.pack_codes(query_codes)
        rows = ((i, retrieval.packed_hamming_distance(query_packed[i:i + 1], db_packed, n_bits)[0])
                for i in range(len(query_codes)))
    for i, hamming in rows:
        order = np.argsort(hamming, kind="stable")
        relevant = db_labels[order] == query_labels[i]
        n_relevant = relevant.sum()
        if n_relevant == 0:
            continue
        ranks = np.flatnonzero(relevant) + 1.0
        aps.append(np.mean(np.arange(1, n_relevant + 1) / ranks))
    return float(np.mean(aps))


def thread_limits(threads: int):
    """Limit BLAS, OpenMP (faiss) and numpy's helpers to ``threads`` threads.

    On a shared machine, multi-threaded BLAS and faiss can spend longer
    waiting for a busy core than computing; one thread gives timings that
    compare the algorithms. Needs threadpoolctl (installed with scikit-learn);
    without it, nothing is limited.
    """
    try:
        import faiss

        faiss.omp_set_num_threads(threads)
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads)


def _faiss_hammings(query_packed: np.ndarray, db_packed: np.ndarray, out: np.ndarray) -> np.ndarray:
    """faiss.hammings in one call, writing int32 distances into ``out`` (Q, N)."""
    import faiss

    faiss.hammings(faiss.swig_ptr(query_packed), faiss.swig_ptr(db_packed),
                   len(query_packed), len(db_packed), db_packed.shape[1], faiss.swig_ptr(out))
    return out


def _packbits_of_signs(codes: np.ndarray) -> np.ndarray:
    """±1 codes → packed bytes, as a faiss user writes it: +1 entries flagged, then packbits."""
    if codes.shape[1] % 8 == 0:    # the flat form, several times faster than axis=1
        return np.packbits(codes.reshape(-1) > 0).reshape(len(codes), -1)
    return np.packbits(codes > 0, axis=1)


def faiss_from_signs(query_codes: np.ndarray, db_codes: np.ndarray) -> np.ndarray:
    """The job of ``hamming_distance`` done with faiss: pack, allocate, ``faiss.hammings``.

    Same input (±1 codes) and the same kind of output (a new (Q, N) array,
    int32 being what faiss writes), without checking that the codes are ±1.
    """
    out = np.empty((len(query_codes), len(db_codes)), dtype=np.int32)
    return _faiss_hammings(_packbits_of_signs(query_codes), _packbits_of_signs(db_codes), out)


_MEMORY_PROBE = """
import json, sys, tracemalloc
import numpy as np
from neurohash_lite import metrics
from neurohash_lite.bench import peak_rss_mb, synthetic_codes
n_query, n_db, n_bits, seed = map(int, sys.argv[1:5])
rng = np.random.default_rng(seed)
db, db_labels = synthetic_codes(n_db, n_bits, rng)
queries, query_labels = synthetic_codes(n_query, n_bits, rng)
before = peak_rss_mb()
tracemalloc.start()
metrics.mean_average_precision(queries, db, query_labels, db_labels)
traced = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print(json.dumps({"inputs_and_runtime_mb": before, "peak_rss_mb": peak_rss_mb(),
                  "traced_peak_mb": traced / 2**20}))
"""


def map_peak_memory(n_query: int, n_db: int, n_bits: int, seed: int = 0) -> dict:
    """Peak memory of one ``mean_average_precision`` call, in a fresh process.

    Returns the process's peak resident set size before the call (Python,
    numpy, the package and the int8 input codes) and after it (``ru_maxrss``,
    so it includes everything), and the peak of the arrays the call itself
    allocated (``tracemalloc``), all in MB.
    """
    completed = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(n_query), str(n_db), str(n_bits), str(seed)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _problem(n_db: int, n_bits: int, args: argparse.Namespace):
    """The codes of one (N, K) cell, the same in both tables."""
    rng = np.random.default_rng([args.seed, n_db, n_bits])
    db, db_labels = synthetic_codes(n_db, n_bits, rng)
    queries, query_labels = synthetic_codes(args.queries, n_bits, rng)
    return queries, db, query_labels, db_labels


def _time_distances(n_db: int, n_bits: int, args: argparse.Namespace, has_faiss: bool) -> dict:
    """One row of the distance table; every time in ms. See :func:`run_retrieval`."""
    queries, db, _, _ = _problem(n_db, n_bits, args)
    db_packed, query_packed = retrieval.pack_codes(db), retrieval.pack_codes(queries)
    nan = float("nan")
    row = {"N": n_db, "K": n_bits, "faiss_from_signs_ms": nan, "faiss_out_ms": nan}
    row["hamming_distance_ms"] = 1e3 * best_time(lambda: metrics.hamming_distance(queries, db), args.repeats)
    out = np.zeros((args.queries, n_db), dtype=retrieval.distance_dtype(n_bits))   # pages touched here
    row["kernel_out_ms"] = 1e3 * best_time(
        lambda: retrieval.packed_hamming_distance(query_packed, db_packed, n_bits, "auto", out=out),
        args.repeats)
    row["numpy_kernel_out_ms"] = 1e3 * best_time(
        lambda: retrieval.packed_hamming_distance(query_packed, db_packed, n_bits, "numpy", out=out),
        args.repeats)
    if has_faiss:
        row["faiss_from_signs_ms"] = 1e3 * best_time(lambda: faiss_from_signs(queries, db), args.repeats)
        faiss_out = np.zeros((args.queries, n_db), dtype=np.int32)
        row["faiss_out_ms"] = 1e3 * best_time(
            lambda: _faiss_hammings(query_packed, db_packed, faiss_out), args.repeats)
        if not np.array_equal(faiss_out, out):     # out holds the numpy kernel's distances, timed last
            raise AssertionError(f"faiss and numpy distances differ at N={n_db}, K={n_bits}")
    row["same_job_ratio"] = row["hamming_distance_ms"] / row["faiss_from_signs_ms"]
    row["kernel_ratio"] = row["kernel_out_ms"] / row["faiss_out_ms"]
    row["bare_ratio"] = row["hamming_distance_ms"] / row["faiss_out_ms"]
    row["numpy_ratio"] = row["numpy_kernel_out_ms"] / row["faiss_out_ms"]
    return row


def _print_distance_targets(rows: list[dict], target: float = 1.5, min_bits: int = 64) -> None:
    """Say, from the measured rows, whether the two like-for-like ratios meet the target."""
    judged = [row for row in rows if row["K"] >= min_bits and np.isfinite(row["faiss_out_ms"])]
    if not judged:
        print(f"Target (K >= {min_bits}, within {target}x of faiss): not judged (no such row, or no faiss).")
        return
    for key, what in (("same_job_ratio", "hamming_distance / faiss from ±1"),
                      ("kernel_ratio", "kernel out= / faiss out=")):
        worst = max(judged, key=lambda row: row[key])
        verdict = "met" if worst[key] <= target else "MISSED"
        print(f"Target {what} <= {target} at K >= {min_bits}: {verdict} "
              f"(worst {worst[key]:.2f} at N = {worst['N']}, K = {worst['K']})")


def _time_map(n_db: int, n_bits: int, args: argparse.Namespace) -> dict:
    queries, db, query_labels, db_labels = _problem(n_db, n_bits, args)
    by_index = metrics.mean_average_precision(queries, db, query_labels, db_labels, ties="index")
    reference = sort_based_map(queries, db, query_labels, db_labels, distances="uint8")
    if not np.isclose(by_index, reference, rtol=0, atol=1e-12):
        raise AssertionError(f"ties='index' mAP {by_index} != sort-based {reference}")
    row = {"N": n_db, "K": n_bits, "map": metrics.mean_average_precision(queries, db, query_labels, db_labels)}
    row["map_ms"] = 1e3 * best_time(
        lambda: metrics.mean_average_precision(queries, db, query_labels, db_labels), args.repeats)
    row["map_index_ms"] = 1e3 * best_time(
        lambda: metrics.mean_average_precision(queries, db, query_labels, db_labels, ties="index"),
        args.repeats)
    row["sort_float_ms"] = 1e3 * best_time(
        lambda: sort_based_map(queries, db, query_labels, db_labels, "float"), args.repeats)
    row["sort_uint8_ms"] = 1e3 * best_time(
        lambda: sort_based_map(queries, db, query_labels, db_labels, "uint8"), args.repeats)
    return row


def run_retrieval(args: argparse.Namespace) -> dict:
    """Time Hamming distances against faiss, and mAP against a sort-based mAP.

    For every database size N and code length K, on noisy class-prototype
    codes. Distances, compared like for like with ``faiss.hammings``:
    ``hamming_distance`` from ±1 codes (checking and packing included, a new
    uint8 array) against the same job done with faiss (:func:`faiss_from_signs`),
    and the packed kernels ("auto" and numpy) into a reused array against
    ``faiss.hammings`` into a reused int32 array. The target, at K ≥ 64, is
    both ratios within 1.5; the verdict is printed from the measured rows. mAP:
    ``mean_average_precision`` end to end (expected and index ties) against
    the sort-based mAP in its float (public repositories) and uint8 (radix
    sort) forms; ``ties="index"`` must reproduce the latter exactly. Then the
    peak memory of one mAP call at the largest N.

    Returns
    -------
    dict
        ``{"distances": [row, ...], "map": [row, ...], "memory": [row, ...]}``, as printed.
    """
    try:
        import faiss  # noqa: F401  (imported before the thread limits, so they reach it)
        has_faiss = True
    except ImportError:
        has_faiss = False
    results = {"distances": [], "map": [], "memory": []}
    print(f"Q = {args.queries} queries; best of at least {args.repeats} runs (of more, up to 1000, until "
          f"0.2 s is spent; slow references once past 2 s); {args.threads} thread(s) for "
          f"BLAS and faiss; faiss {'installed' if has_faiss else 'NOT installed'}. Times in ms, "
          "wall clock: on a shared machine treat differences within ~20 % as noise.")
    with thread_limits(args.threads):
        print("\nHamming distances, all Q x N")
        header = (f"{'N':>9} {'K':>4} | {'hamming_distance':>16} {'faiss from ±1':>13} | "
                  f"{'kernel out=':>11} {'faiss out=':>10} | {'same job':>8} {'kernel':>6} | "
                  f"{'hd/faiss out=':>13} {'numpy/faiss':>11}")
        print(header + "\n" + "-" * len(header))
        for n_db in args.db_sizes:
            for n_bits in args.bits:
                row = _time_distances(n_db, n_bits, args, has_faiss)
                results["distances"].append(row)
                print(f"{n_db:>9} {n_bits:>4} | {row['hamming_distance_ms']:16.3f} "
                      f"{row['faiss_from_signs_ms']:13.3f} | {row['kernel_out_ms']:11.3f} "
                      f"{row['faiss_out_ms']:10.3f} | {row['same_job_ratio']:8.2f} {row['kernel_ratio']:6.2f} | "
                      f"{row['bare_ratio']:13.2f} {row['numpy_ratio']:11.2f}", flush=True)
        print("Two like-for-like comparisons with faiss.hammings, the ratios the target is judged on:\n"
              "  same job: hamming_distance, from ±1 int8 codes to a new uint8 array (the codes "
              "checked and packed), over\n"
              "    'faiss from ±1': the same job done with faiss, np.packbits(codes > 0) for both "
              "sets, a new int32 array, faiss.hammings;\n"
              "  kernel: packed_hamming_distance on packed codes into a reused uint8 array "
              "(backend auto = faiss when\n"
              "    installed and K is a multiple of 64, else numpy), over faiss.hammings on the "
              "same packed codes into a reused int32 array.\n"
              "For information: hd/faiss out= is hamming_distance (checking, packing and a new "
              "array included) over that bare\n"
              "  faiss call, which does none of the three; numpy/faiss is the numpy kernel, the "
              "one the book teaches, over it.")
        _print_distance_targets(results["distances"])

        print("\nmAP@ALL over Q queries, end to end from ±1 codes")
        header = (f"{'N':>9} {'K':>4} {'mAP':>6} | {'expected':>9} {'index':>8} {'sort f32':>9} "
                  f"{'sort u8':>8} | {'f32/expected':>12} {'u8/expected':>11}")
        print(header + "\n" + "-" * len(header))
        for n_db in args.db_sizes:
            for n_bits in args.bits:
                row = _time_map(n_db, n_bits, args)
                results["map"].append(row)
                print(f"{n_db:>9} {n_bits:>4} {row['map']:6.3f} | {row['map_ms']:9.1f} {row['map_index_ms']:8.1f} "
                      f"{row['sort_float_ms']:9.1f} {row['sort_uint8_ms']:8.1f} | "
                      f"{row['sort_float_ms'] / row['map_ms']:12.1f} {row['sort_uint8_ms'] / row['map_ms']:11.1f}",
                      flush=True)
        print("expected / index: mean_average_precision with ties='expected' (histograms, no sort) and "
              "ties='index' (a stable radix sort per query). sort f32: the public repositories' way, "
              "float32 distances from a matrix-vector product and a stable argsort per query; sort u8: "
              "the same on the package's uint8 distances. The last two columns: how many times faster "
              "the default mAP is.")

    if not args.no_memory:
        n_db = max(args.db_sizes)
        print(f"\nPeak memory of one mean_average_precision call at N = {n_db} (fresh process; "
              "the peak RSS includes Python, the libraries and the int8 input codes)")
        for n_bits in args.bits:
            memory = map_peak_memory(args.queries, n_db, n_bits, args.seed)
            results["memory"].append({"N": n_db, "K": n_bits, **memory})
            print(f"  K = {n_bits:>3}: peak RSS {memory['peak_rss_mb']:7.1f} MB (before the call "
                  f"{memory['inputs_and_runtime_mb']:.1f} MB); arrays allocated by the call, peak "
                  f"{memory['traced_peak_mb']:.1f} MB")
    return results


def add_retrieval_parser(commands) -> None:
    parser = commands.add_parser(
        "retrieval", help="Hamming distances vs faiss, mAP vs a sort-based mAP",
        description=run_retrieval.__doc__.split("\n\n")[0],
    )
    parser.add_argument("--queries", type=int, default=100, help="Q, query codes (default 100)")
    parser.add_argument("--db-sizes", type=lambda s: int(float(s)), nargs="+",
                        default=[10_000, 100_000, 1_000_000], help="N values (default 1e4 1e5 1e6)")
    parser.add_argument("--bits", type=int, nargs="+", default=[16, 32, 64, 128],
                        help="code lengths K (default 16 32 64 128)")
    parser.add_argument("--repeats", type=int, default=3, help="best of at least this many runs (default 3)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for BLAS and faiss (default 1: stable timings on a shared machine)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory probe")
    parser.set_defaults(run=run_retrieval)


# --------------------------------------------------------------------------
# Training throughput (shared by the methods' sub-commands)
# --------------------------------------------------------------------------
def training_devices() -> list[tuple[str, bool]]:
    """The (device, mixed precision) settings to time: the CPU in float32 and,
    when CUDA is present, the GPU without and with mixed precision."""
    import torch

    settings = [("cpu", False)]
    if torch.cuda.is_available():
        settings += [("cuda", False), ("cuda", True)]
    return settings


def time_training_steps(model, objective, batch: tuple, device: str, amp: bool,
                        steps: int = 5, warmup: int = 1) -> float:
    """Seconds per optimisation step (forward, backward, Adam) on one fixed batch.

    Runs exactly what :func:`neurohash_lite.train.fit` runs per batch, under
    the same autocast and loss scaling, so the figure is the training path's.
    """
    import torch

    from neurohash_lite.train import _autocast, autocast_dtype

    device = torch.device(device)
    model.to(device).train()
    objective.to(device).train()
    batch = tuple(item.to(device) for item in batch)
    optimiser = torch.optim.Adam(list(model.parameters()) + list(objective.parameters()), lr=1e-4)
    dtype = autocast_dtype(device) if amp else None
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)

    def step():
        with _autocast(device, dtype):
            loss, _ = objective(model, batch)
        optimiser.zero_grad(set_to_none=True)
        scaler.scale(loss.float()).backward()
        scaler.step(optimiser)
        scaler.update()

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def tier_input_shape(tier) -> tuple[int, ...]:
    """Shape of one scan at a tier: (C, H, W) slices or (1, D, H, W) volumes.

    The 3D grid is the MNI152 brain's bounding box (about 160 x 192 x 160 mm)
    at the tier's voxel size, as the data loader resamples it.
    """
    if tier.spatial_dims == 2:
        return (tier.n_slices, tier.image_size, tier.image_size)
    return (1,) + tuple(int(round(extent / tier.voxel_size_mm)) for extent in (160, 192, 160))


def _training_table(title: str, rows: list[dict]) -> None:
    print(title)
    print(f"{'tier':>6} {'device':>6} {'precision':>9} {'input':>18} {'K':>4} {'batch':>5} "
          f"{'s/step':>8} {'samples/s':>10} {'epoch (s)':>10}")
    for row in rows:
        print(f"{row['tier']:>6} {row['device']:>6} {row['precision']:>9} {str(row['input']):>18} "
              f"{row['K']:>4} {row['batch']:>5} {row['seconds_per_step']:8.3f} "
              f"{row['samples_per_second']:10.1f} {row['epoch_seconds']:10.1f}")


def train_size(preset: str, protocol: str) -> int:
    """Training subjects of a split protocol for a cohort preset (its paired subjects, seed 0).

    ``"ahs"``: 90 % of 90 % of the paired subjects; ``"dcpha"``: 80 % of each
    class's paired subjects (:func:`neurohash_lite.data.make_splits`).
    """
    from neurohash_lite.data import PRESETS, make_splits

    labels = np.repeat(np.arange(3), PRESETS[preset].pet_counts)
    return len(make_splits(labels, protocol=protocol, seed=0).train)


def run_train_ahs(args: argparse.Namespace) -> list[dict]:
    """Training throughput of Method A (Adaptive Hash Semantics) at the book and paper tiers.

    One step is a forward pass of both branches on a batch of paired scans,
    the whole AHS loss, a backward pass and an Adam step. The epoch time
    assumes the tier's training set of the ``ahs`` protocol (:func:`train_size`:
    243 subjects for ``adni2``, 323 of ``adni1``'s 397 PET subjects).
    """
    import torch

    from neurohash_lite.losses import AHSLoss
    from neurohash_lite.models import CrossModalHashNet
    from neurohash_lite.runtime import resolve_tier, seed_everything
    from neurohash_lite.train import CrossModalObjective

    torch.set_num_threads(args.threads)
    rows = []
    for tier_name in args.tiers:
        tier = resolve_tier(tier_name)
        shape = tier_input_shape(tier)
        batch_size = args.batch_size or tier.batch_size
        for device, amp in training_devices():
            seed_everything(0)
            model = CrossModalHashNet(args.bits, in_channels=shape[0], spatial_dims=tier.spatial_dims,
                                      width=tier.width)
            batch = (torch.randn(batch_size, *shape), torch.randn(batch_size, *shape),
                     torch.randint(0, 3, (batch_size,)))
            steps = args.steps if device == "cuda" or tier.spatial_dims == 2 else max(1, args.steps // 2)
            seconds = time_training_steps(model, CrossModalObjective(AHSLoss(args.bits)), batch,
                                          device, amp, steps=steps)
            precision = "float32" if not amp else "mixed"
            rows.append({
                "tier": tier_name, "device": device, "precision": precision, "input": shape,
                "K": args.bits, "batch": batch_size, "seconds_per_step": seconds,
                "samples_per_second": batch_size / seconds,
                "epoch_seconds": train_size(tier.preset, "ahs") / batch_size * seconds,
            })
    _training_table(f"Method A training throughput ({args.threads} CPU thread(s); "
                    f"CUDA {'present' if torch.cuda.is_available() else 'absent: GPU rows skipped'})", rows)
    return rows


def add_train_ahs_parser(commands) -> None:
    parser = commands.add_parser("train-ahs", help="Method A training throughput at the book and paper tiers",
                                 description=run_train_ahs.__doc__.split("\n\n")[0])
    parser.add_argument("--tiers", nargs="+", default=["book", "paper"], choices=["smoke", "book", "paper"])
    parser.add_argument("--bits", type=int, default=64, help="code length K (default 64)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the tier's")
    parser.add_argument("--steps", type=int, default=5, help="timed steps after one warm-up step (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.set_defaults(run=run_train_ahs)


# --------------------------------------------------------------------------
# train-dcpha: Method B's three training steps
# --------------------------------------------------------------------------
__all__ += ["run_train_dcpha"]


def _objective_module(objective):
    """An ``nn.Module`` that calls a plain objective, for :func:`time_training_steps`."""
    from torch import nn

    class ObjectiveModule(nn.Module):
        def forward(self, model, batch):
            return objective(model, batch)

    return ObjectiveModule()


def dcpha_step_settings(network, batch: tuple, feature_batch: tuple) -> list[tuple[str, object, object, tuple]]:
    """What each timed row trains: ``(name, model, objective, batch)``.

    The three steps of :func:`~neurohash_lite.dcpha_model.train_dcpha` on the
    whole network, then steps 2 and 3 on stored features
    (:class:`~neurohash_lite.dcpha_model.DCPHAHead`), as the chapters run
    their cheaper experiments.
    """
    from neurohash_lite.dcpha_model import (DCPHAHead, DCPHAObjective, DecoderPretrainObjective,
                                            EncoderPretrainObjective)

    head = DCPHAHead(network)
    return [
        ("1 encoder + SPAB_E", network, EncoderPretrainObjective(), batch),
        ("2 decoder + SPAB_D", network, DecoderPretrainObjective(), batch),
        ("3 fine-tune all (J)", network, DCPHAObjective(), batch),
        ("2 on features", head, DecoderPretrainObjective(), feature_batch),
        ("3 on features (J)", head, DCPHAObjective(), feature_batch),
    ]


def run_train_dcpha(args: argparse.Namespace) -> list[dict]:
    """Training throughput of Method B (DCPHA), step by step, at the book and paper tiers.

    One optimisation step of each of the three training steps
    (:func:`~neurohash_lite.dcpha_model.train_dcpha`) on a batch of paired
    scans: (1) the encoder and SPAB_E on cross-entropy, (2) the decoder and
    SPAB_D on the frozen encoder, (3) everything on J; then steps 2 and 3 on
    stored encoder features, the way the chapters run their grids. A sample
    is one subject (its sMRI and its PET). The inputs are random tensors of
    the tier's shape (the cost does not depend on the values); the epoch time
    assumes the tier's DCPHA training set, 80 % of each class's paired
    subjects (240 for ``adni2``, 317 for ``adni1``), in full batches.
    """
    import torch

    from neurohash_lite.dcpha_model import DCPHANet
    from neurohash_lite.runtime import resolve_tier, seed_everything

    torch.set_num_threads(args.threads)
    rows = []
    for tier_name in args.tiers:
        tier = resolve_tier(tier_name)
        shape = tier_input_shape(tier)
        batch_size = args.batch_size or tier.batch_size
        n_train = train_size(tier.preset, "dcpha")
        for device, amp in training_devices():
            seed_everything(0)
            network = DCPHANet(args.bits, in_channels=shape[0], spatial_dims=tier.spatial_dims, width=tier.width,
                               shared_encoder=not args.per_modality, attention=args.attention)
            labels = torch.randint(0, 3, (batch_size,))
            batch = (torch.randn(batch_size, *shape), torch.randn(batch_size, *shape), labels)
            features = (torch.rand(batch_size, network.feature_dim), torch.rand(batch_size, network.feature_dim),
                        labels)
            # 3D volumes on the CPU take seconds per step: fewer of them
            steps = args.steps if device == "cuda" or tier.spatial_dims == 2 else max(1, args.steps // 2)
            for name, model, objective, inputs in dcpha_step_settings(network, batch, features):
                seconds = time_training_steps(model, _objective_module(objective), inputs, device, amp,
                                              steps=steps)
                rows.append({
                    "tier": tier_name, "device": device, "precision": "mixed" if amp else "float32",
                    "step": name, "input": shape if inputs is batch else (network.feature_dim,),
                    "K": args.bits, "batch": batch_size, "seconds_per_step": seconds,
                    "samples_per_second": batch_size / seconds,
                    "epoch_seconds": max(1, n_train // batch_size) * seconds,  # fit drops the last partial batch
                })
    encoder = "one encoder per modality" if args.per_modality else "one shared encoder"
    print(f"Method B (DCPHA) training throughput, {encoder}, SPABs {'with' if args.attention else 'without'} "
          f"attention ({args.threads} CPU thread(s); CUDA "
          f"{'present' if torch.cuda.is_available() else 'absent: GPU rows skipped'})")
    header = (f"{'tier':>6} {'device':>6} {'precision':>9} {'step':<20} {'input':>16} {'K':>4} {'batch':>5} "
              f"{'s/step':>8} {'samples/s':>10} {'epoch (s)':>10}")
    print(header + "\n" + "-" * len(header))
    for row in rows:
        print(f"{row['tier']:>6} {row['device']:>6} {row['precision']:>9} {row['step']:<20} "
              f"{str(row['input']):>16} {row['K']:>4} {row['batch']:>5} {row['seconds_per_step']:8.3f} "
              f"{row['samples_per_second']:10.1f} {row['epoch_seconds']:10.1f}")
    print("A sample is one subject (sMRI and PET). Wall-clock times: on a shared machine treat differences "
          "within ~20 % as noise.")
    return rows


def add_train_dcpha_parser(commands) -> None:
    parser = commands.add_parser("train-dcpha",
                                 help="Method B (DCPHA) training throughput at the book and paper tiers",
                                 description=run_train_dcpha.__doc__.split("\n\n")[0])
    parser.add_argument("--tiers", nargs="+", default=["book", "paper"], choices=["smoke", "book", "paper"])
    parser.add_argument("--bits", type=int, default=32, help="code length K (default 32)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the tier's")
    parser.add_argument("--steps", type=int, default=5, help="timed steps after one warm-up step (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--per-modality", action="store_true", help="one encoder per modality (default: shared)")
    parser.add_argument("--attention", action="store_true", help="attention gates in the SPABs (default: none, "
                        "as the authors' released model)")
    parser.set_defaults(run=run_train_dcpha)


def add_archive_parser(commands) -> None:
    from neurohash_lite import bench_archive

    bench_archive.add_archive_parser(commands)


def add_data_parser(commands) -> None:
    from neurohash_lite import bench_data

    bench_data.add_data_parser(commands).set_defaults(run=bench_data.run_data)


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------
def main_parser() -> argparse.ArgumentParser:
    """The command line of every sub-command."""
    parser = argparse.ArgumentParser(prog="python -m neurohash_lite.bench",
                                     description="Benchmarks of neurohash_lite.")
    commands = parser.add_subparsers(dest="command", required=True)
    add_retrieval_parser(commands)
    add_train_ahs_parser(commands)
    add_train_dcpha_parser(commands)
    add_data_parser(commands)
    add_archive_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = main_parser().parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
