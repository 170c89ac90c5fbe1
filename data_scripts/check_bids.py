"""Check a BIDS-like cohort folder before pointing the book at it; print counts per class and modality.

Example
-------
    python data_scripts/check_bids.py /data/adni_bids --diagnosis-column diagnosis_sc --map SMC=0

Reads participants.tsv and every T1w and PET image the loader would use, and
reports every problem it finds (not just the first): files that are not
NIfTI, are truncated, hold NaN or infinite voxels or several frames. Exits
with status 0 when the folder is usable, 1 otherwise. Images are expected in
MNI space (e.g. after Clinica's t1-linear / pet-linear pipelines).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from neurohash_lite.data import DIAGNOSES, load_volume, scan_layout


def check_folder(root, *, diagnosis_column="diagnosis", diagnosis_map=None, session=None) -> tuple[str, list[str]]:
    """Check a folder; return (report, problems). The report holds the counts per class and modality."""
    try:
        layout = scan_layout(root, diagnosis_column=diagnosis_column, diagnosis_map=diagnosis_map, session=session)
    except ValueError as error:
        return "", [str(error)]
    problems = []
    images = list(layout.mri_paths) + [p for p in layout.pet_paths if p is not None]
    for path in images:
        try:
            data, _ = load_volume(path)
        except ValueError as error:
            problems.append(str(error))
            continue
        if not np.any(data):
            problems.append(f"{path}: every voxel is 0")
    labels = layout.participants.labels
    has_pet = np.asarray([p is not None for p in layout.pet_paths])
    rows = {
        f"{layout.mri_suffix} (all)": np.ones_like(has_pet),
        f"{layout.pet_suffix} (paired)": has_pet,
        f"{layout.mri_suffix} only": ~has_pet,
    }
    width = max(len(name) for name in rows)
    lines = [f"{root}", f"{'':>{width}}" + "".join(f"{d:>6}" for d in DIAGNOSES) + f"{'total':>7}"]
    for name, which in rows.items():
        counts = [int(((labels == c) & which).sum()) for c in range(3)]
        lines.append(f"{name:>{width}}" + "".join(f"{n:>6}" for n in counts) + f"{sum(counts):>7}")
    if layout.pet_only:
        lines.append(f"{len(layout.pet_only)} subject(s) with a {layout.pet_suffix} image and no "
                     f"{layout.mri_suffix} image are skipped: {', '.join(layout.pet_only[:5])}")
    lines += [f"note: {note}" for note in layout.notes[:20]]
    return "\n".join(lines), problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="the cohort folder (holds participants.tsv and sub-* folders)")
    parser.add_argument("--diagnosis-column", default="diagnosis", help="column of participants.tsv (default diagnosis)")
    parser.add_argument("--map", action="append", default=[], metavar="NAME=LABEL",
                        help="extra diagnosis string and its label 0/1/2, e.g. SMC=0 (repeatable)")
    parser.add_argument("--session", default=None, help="use this session label instead of each subject's first")
    args = parser.parse_args(argv)
    try:
        mapping = {name: int(label) for name, label in (item.split("=", 1) for item in args.map)}
    except ValueError:
        parser.error("--map takes NAME=LABEL with LABEL 0, 1 or 2")
    report, problems = check_folder(args.root, diagnosis_column=args.diagnosis_column,
                                    diagnosis_map=mapping, session=args.session)
    if report:
        print(report)
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    print("OK: the folder is usable" if not problems else f"{len(problems)} problem(s) found",
          file=sys.stderr if problems else sys.stdout)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
