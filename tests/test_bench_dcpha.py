"""The train-dcpha benchmark: its training-set sizes by hand, and a run end to end at its
smallest setting (figures printed, never asserted)."""

from neurohash_lite import bench


def test_dcpha_train_size_is_80_percent_of_each_class():
    # adni2 pairs 76/154/70: round(0.2 n) per class is tested -> 61 + 123 + 56 train.
    assert bench.train_size("adni2", "dcpha") == 61 + 123 + 56
    # adni1 PET subjects 100/204/93 -> 80 + 163 + 74; tiny 10/10/10 -> 8 per class.
    assert bench.train_size("adni1", "dcpha") == 80 + 163 + 74
    assert bench.train_size("tiny", "dcpha") == 24


def test_ahs_train_size_is_90_percent_of_90_percent_of_each_class():
    # adni2 76/154/70: queries round(0.1 n) = 8/15/7, validation round(0.1 rest) = 7/14/6 -> 61 + 125 + 57.
    assert bench.train_size("adni2", "ahs") == 61 + 125 + 57
    # adni1 100/204/93: queries 10/20/9, validation 9/18/8 -> 81 + 166 + 76.
    assert bench.train_size("adni1", "ahs") == 81 + 166 + 76


def test_train_dcpha_bench_times_every_step_at_smoke_tier(capsys):
    rows = bench.run_train_dcpha(bench.main_parser().parse_args(
        ["train-dcpha", "--tiers", "smoke", "--steps", "1", "--bits", "16", "--threads", "1"]))
    cpu_rows = [row for row in rows if row["device"] == "cpu"]
    assert [row["step"] for row in cpu_rows] == [
        "1 encoder + SPAB_E", "2 decoder + SPAB_D", "3 fine-tune all (J)", "2 on features", "3 on features (J)"]
    assert all(row["seconds_per_step"] > 0 and row["samples_per_second"] > 0 for row in rows)
    # smoke: 24 training subjects in batches of 16 -> one full batch per epoch
    assert all(row["epoch_seconds"] == row["seconds_per_step"] for row in rows)
    assert cpu_rows[0]["input"] == (3, 32, 32) and cpu_rows[-1]["input"] != (3, 32, 32)
    assert "Method B (DCPHA) training throughput" in capsys.readouterr().out
