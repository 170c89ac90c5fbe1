"""Write a synthetic sMRI / FDG-PET cohort (a command line over make_synthetic_cohort).

Examples
--------
    python data_scripts/make_cohort.py ~/neurohash_data/cohorts/adni2 --preset adni2 --seed 0
    python data_scripts/make_cohort.py /tmp/adni1 --preset adni1 --voxel-size 4 --overlap 1.5

The folder must not exist, be empty, or already hold the very same cohort (then
nothing is done). See neurohash_lite/data/synthetic.py for the model.
"""

from __future__ import annotations

import argparse
import sys
import time

from neurohash_lite.data import PRESETS, load_cohort, make_synthetic_cohort


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", help="the cohort folder to write")
    parser.add_argument("--preset", default="adni2", choices=sorted(PRESETS), help="class counts (default adni2)")
    parser.add_argument("--seed", type=int, default=0, help="non-negative; same seed, same cohort (default 0)")
    parser.add_argument("--voxel-size", type=float, default=4.0, help="working resolution in mm (default 4)")
    parser.add_argument("--overlap", type=float, default=1.0,
                        help="within-class spread of disease severity, 0 to 3 (default 1)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        root = make_synthetic_cohort(args.out_dir, args.preset, args.seed, voxel_size_mm=args.voxel_size,
                                     overlap=args.overlap, verbose=True)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{root} ready in {time.perf_counter() - start:.1f} s")
    print(load_cohort(root, spatial_dims=3, voxel_size_mm=8.0, cache_dir=False).summary().rsplit("\n", 1)[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
