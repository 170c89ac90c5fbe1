"""The data benchmark runs end to end on the tiny preset and reports every figure."""

from neurohash_lite.bench_data import bench_data, format_data_report


def test_bench_data_on_the_tiny_preset(tmp_path):
    rows = bench_data(("tiny",), voxel_size_mm=8.0, work_dir=tmp_path)
    (row,) = rows
    assert row["preset"] == "tiny" and row["n_subjects"] == 36 and row["n_paired"] == 30
    for key in ("generate_s", "load_2d64_files_s", "load_2d64_cache_s", "load_3d_files_s", "load_3d_cache_s",
                "peak_rss_mb", "disk_mb"):
        assert row[key] > 0
    assert row["shape_2d64"] == [36, 3, 64, 64] and row["shape_3d"] == [36, 1, 21, 24, 21]
    table = format_data_report(rows)
    assert "generate s" in table and "tiny" in table
