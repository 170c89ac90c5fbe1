"""Benchmark of the data layer: generating, loading and reloading synthetic cohorts.

    python -m neurohash_lite.bench_data                      # adni2 and adni1 at 4 mm
    python -m neurohash_lite.bench_data --presets tiny adni2 --voxel-size 4

For each preset, a fresh Python process (so that its peak memory is its own)

1. generates the cohort with :func:`~neurohash_lite.data.make_synthetic_cohort`;
2. loads it as the ``book`` tier reads it (2D, three 64 x 64 slices), the
   first time from the NIfTI files and a second time from the cache;
3. loads it as 3D volumes at the generation voxel size (the ``paper`` tier),
   from the files and from the cache.

It reports wall-clock seconds of each step (imports excluded) and the
process's peak resident memory. The figures are printed, never asserted;
on a shared machine they are noisy.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["bench_data", "format_data_report", "add_data_parser", "run_data"]


def _child(arguments: str) -> None:
    """Runs in the child process: one preset, prints one JSON line."""
    import resource

    from neurohash_lite.data import load_cohort, make_synthetic_cohort

    options = json.loads(arguments)
    work = Path(options["work_dir"])
    root, cache = work / f"{options['preset']}-cohort", work / f"{options['preset']}-cache"
    row = {"preset": options["preset"], "voxel_size_mm": options["voxel_size_mm"]}

    start = time.perf_counter()
    make_synthetic_cohort(root, options["preset"], 0, voxel_size_mm=options["voxel_size_mm"])
    row["generate_s"] = time.perf_counter() - start
    row["peak_rss_generate_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row["disk_mb"] = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2**20
    for name, kwargs in (("2d64", {"spatial_dims": 2, "image_size": 64, "n_slices": 3}),
                         ("3d", {"spatial_dims": 3, "voxel_size_mm": options["voxel_size_mm"]})):
        for attempt in ("files", "cache"):
            start = time.perf_counter()
            cohort = load_cohort(root, cache_dir=cache, **kwargs)
            row[f"load_{name}_{attempt}_s"] = time.perf_counter() - start
        row[f"shape_{name}"] = list(cohort.mri.shape)
    row["n_subjects"], row["n_paired"] = cohort.n_subjects, cohort.n_paired
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(row))


def bench_data(presets=("adni2", "adni1"), voxel_size_mm: float = 4.0, work_dir=None) -> list[dict]:
    """Time generation and loading of synthetic cohorts, one fresh process per preset.

    Parameters
    ----------
    presets : sequence of str
        Keys of :data:`neurohash_lite.data.PRESETS`.
    voxel_size_mm : float
        Generation voxel size (default 4 mm).
    work_dir : path-like, optional
        Where cohorts and caches are written; a temporary folder (deleted
        afterwards) by default.

    Returns
    -------
    list of dict
        One row per preset: ``generate_s``, ``peak_rss_generate_mb``,
        ``disk_mb``, ``load_2d64_files_s``, ``load_2d64_cache_s``,
        ``load_3d_files_s``, ``load_3d_cache_s``, ``peak_rss_mb``, shapes and counts.
    """
    temporary = work_dir is None
    work = Path(tempfile.mkdtemp(prefix="neurohash-bench-data-")) if temporary else Path(work_dir)
    rows = []
    try:
        for preset in presets:
            options = json.dumps({"preset": preset, "voxel_size_mm": float(voxel_size_mm),
                                  "work_dir": str(work / f"run-{time.time_ns()}")})
            done = subprocess.run(
                [sys.executable, "-c", "import sys; from neurohash_lite.bench_data import _child; _child(sys.argv[1])",
                 options],
                capture_output=True, text=True, check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"benchmark of preset {preset!r} failed:\n{done.stderr[-2000:]}")
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        if temporary:
            shutil.rmtree(work, ignore_errors=True)
    return rows


def format_data_report(rows: list[dict]) -> str:
    """The rows of :func:`bench_data` as a table."""
    columns = [
        ("preset", "preset", "{}"), ("subjects", "n_subjects", "{}"), ("paired", "n_paired", "{}"),
        ("generate s", "generate_s", "{:.1f}"), ("peak MB", "peak_rss_generate_mb", "{:.0f}"),
        ("disk MB", "disk_mb", "{:.0f}"),
        ("2D files s", "load_2d64_files_s", "{:.1f}"), ("2D cache s", "load_2d64_cache_s", "{:.2f}"),
        ("3D files s", "load_3d_files_s", "{:.1f}"), ("3D cache s", "load_3d_cache_s", "{:.2f}"),
        ("peak MB all", "peak_rss_mb", "{:.0f}"),
    ]
    cells = [[title for title, _, _ in columns]]
    cells += [[fmt.format(row[key]) for _, key, fmt in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    if rows:
        lines.append(f"(generation at {rows[0]['voxel_size_mm']:g} mm; 2D = three 64 x 64 slices; "
                     f"3D at the generation voxel size, shape {tuple(rows[-1]['shape_3d'])} for the last preset)")
    return "\n".join(lines)


def add_data_parser(commands) -> argparse.ArgumentParser:
    """Add the ``data`` sub-command to a sub-parser collection."""
    parser = commands.add_parser("data", help="generate and load synthetic cohorts")
    parser.add_argument("--presets", nargs="+", default=["adni2", "adni1"])
    parser.add_argument("--voxel-size", type=float, default=4.0)
    parser.add_argument("--work-dir", default=None, help="keep cohorts and caches here (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    return parser


def run_data(args) -> None:
    """Run the ``data`` benchmark with parsed arguments and print the table."""
    rows = bench_data(args.presets, args.voxel_size, args.work_dir)
    print(format_data_report(rows))
    if getattr(args, "json", False):
        print(json.dumps(rows, indent=1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m neurohash_lite.bench_data", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command")
    add_data_parser(commands)
    args = parser.parse_args(["data", *(argv if argv is not None else sys.argv[1:])])
    run_data(args)


if __name__ == "__main__":
    main()
