"""The train-ahs benchmark runs end to end at its smallest setting (figures printed, never asserted)."""

from neurohash_lite import bench


def test_train_ahs_bench_runs_at_smoke_tier(capsys):
    rows = bench.run_train_ahs(bench.main_parser().parse_args(
        ["train-ahs", "--tiers", "smoke", "--steps", "1", "--bits", "16", "--threads", "1"]))
    assert [row["device"] for row in rows][0] == "cpu"
    assert all(row["seconds_per_step"] > 0 and row["samples_per_second"] > 0 for row in rows)
    assert "Method A training throughput" in capsys.readouterr().out
