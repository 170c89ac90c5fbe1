"""The archive benchmark runs end to end on a tiny problem (figures printed, never asserted)."""

import numpy as np
import pytest

from neurohash_lite import bench
from neurohash_lite.bench_archive import archive_row, run_archive

pytest.importorskip("faiss")


def test_archive_bench_runs_on_random_codes(capsys):
    rows = run_archive(bench.main_parser().parse_args(
        ["archive", "--db-sizes", "3000", "--max-n", "3000", "--bits", "32", "64", "--queries", "8",
         "--repeats", "1", "--random-only"]))
    assert [(row["N"], row["K"]) for row in rows] == [(3000, 32), (3000, 64)]
    assert "mih_knn_ms" in rows[1] and "mih_knn_ms" not in rows[0]      # MIH measured at K = 64 only
    assert rows[1]["faiss_mh_range_exact"]                               # nflip = r // m: exact range search
    out = capsys.readouterr().out
    assert "IndexBinaryFlat" in out and "Target" in out


def test_archive_row_on_codes_sampled_around_outputs():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 40)
    trained = {"mri": np.tanh(rng.standard_normal((40, 64))).astype(np.float32),
               "pet": np.tanh(rng.standard_normal((40, 64))).astype(np.float32), "labels": labels}
    args = bench.main_parser().parse_args(["archive", "--queries", "5", "--repeats", "1"])
    row = archive_row("archive", 2000, 64, args, trained)      # asserts MIH == scan internally
    assert row["setting"] == "archive" and row["tables_mb"] > 0
