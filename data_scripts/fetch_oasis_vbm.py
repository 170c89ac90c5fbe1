"""Fetch the OASIS-1 VBM maps with nilearn and write them as a BIDS-like cohort of two "modalities".

Example
-------
    python data_scripts/fetch_oasis_vbm.py ~/neurohash_data/cohorts/oasis1-vbm

OASIS-1 (Marcus et al., 2007) is a cross-sectional MRI study of 416 adults;
nilearn's ``fetch_oasis_vbm`` downloads (about 0.9 GB, once) its
voxel-based-morphometry maps: for each subject a grey-matter and a
white-matter density map in MNI space (DARTEL, 403 subjects). Here the two
maps stand in for two modalities: the grey-matter map is the first ("mri",
file suffix ``label-GM_probseg``) and the white-matter map the second ("pet",
``label-WM_probseg``); the folder's ``dataset_description.json`` tells the
loader so, and ``load_cohort(folder)`` then reads it like any cohort.

Diagnosis comes from the Clinical Dementia Rating: CDR 0 -> NC, 0.5 -> MCI,
1 or more -> AD. Subjects without a CDR (the young adults) are left out and
counted. Using OASIS data requires accepting its Data Usage Agreement
(https://sites.wustl.edu/oasisbrains/).

The download needs the internet. Offline, the script stops with a clear
message and writes nothing: the cohort is assembled in a temporary folder and
renamed at the end.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import secrets
import shutil
import sys
from pathlib import Path

MRI_SUFFIX = "label-GM_probseg"
PET_SUFFIX = "label-WM_probseg"


def cdr_to_diagnosis(cdr) -> str | None:
    """CDR 0 -> "NC", 0.5 -> "MCI", >= 1 -> "AD", missing -> None."""
    try:
        cdr = float(cdr)
    except (TypeError, ValueError):
        return None
    if math.isnan(cdr):
        return None
    if cdr == 0:
        return "NC"
    if cdr == 0.5:
        return "MCI"
    if cdr >= 1:
        return "AD"
    raise ValueError(f"CDR {cdr} is not a Clinical Dementia Rating (0, 0.5, 1, 2, 3)")


def _fetch(n_subjects, nilearn_data_dir):
    from nilearn import datasets

    try:
        return datasets.fetch_oasis_vbm(n_subjects=n_subjects, data_dir=nilearn_data_dir, verbose=0)
    except Exception as error:  # requests, urllib and nilearn raise many kinds
        raise ConnectionError(
            "could not download the OASIS-1 VBM maps with nilearn.datasets.fetch_oasis_vbm "
            f"({type(error).__name__}: {error}). This needs the internet (www.nitrc.org); "
            "run it again when online. Nothing was written."
        ) from error


def fetch_oasis_vbm_cohort(out_dir, n_subjects: int | None = None, nilearn_data_dir=None) -> Path:
    """Download (with nilearn) and write the OASIS-1 VBM cohort.

    Parameters
    ----------
    out_dir : path-like
        Must not exist or be empty.
    n_subjects : int, optional
        The first n subjects only (default all 403).
    nilearn_data_dir : path-like, optional
        Where nilearn keeps its download (default ``~/nilearn_data``).

    Returns
    -------
    pathlib.Path
        ``out_dir``.

    Raises
    ------
    ValueError
        If ``out_dir`` holds something already.
    ConnectionError
        If the download fails (e.g. offline); nothing is written then.
    """
    import nibabel as nib

    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ValueError(f"out_dir={str(out_dir)!r} already exists and is not empty; choose another folder")
    bunch = _fetch(n_subjects, nilearn_data_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
    partial.mkdir()
    try:
        table = bunch.ext_vars.reset_index(drop=True)
        rows, unrated = [], 0
        for i, (gm_path, wm_path) in enumerate(zip(bunch.gray_matter_maps, bunch.white_matter_maps)):
            diagnosis = cdr_to_diagnosis(table.loc[i, "cdr"])
            if diagnosis is None:
                unrated += 1
                continue
            label = "".join(ch for ch in str(table.loc[i, "id"]) if ch.isalnum())  # OAS1_0001_MR1 -> OAS10001MR1
            participant = f"sub-{label}"
            anat = partial / participant / "anat"
            anat.mkdir(parents=True)
            for source, suffix in ((gm_path, MRI_SUFFIX), (wm_path, PET_SUFFIX)):
                nib.save(nib.load(source), anat / f"{participant}_{suffix}.nii.gz")
            rows.append([participant, diagnosis, table.loc[i, "age"], table.loc[i, "cdr"], table.loc[i, "mmse"]])
        with open(partial / "participants.tsv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerow(["participant_id", "diagnosis", "age", "cdr", "mmse"])
            writer.writerows([["n/a" if isinstance(v, float) and math.isnan(v) else v for v in row] for row in rows])
        description = {
            "Name": "OASIS-1 VBM maps (grey and white matter) as a two-modality cohort",
            "BIDSVersion": "1.9.0",
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "data_scripts/fetch_oasis_vbm.py", "Description": "nilearn fetch_oasis_vbm"}],
            "NeuroHashModalities": {"mri": MRI_SUFFIX, "pet": PET_SUFFIX},
            "NeuroHashNote": (f"Diagnosis from CDR (0 NC, 0.5 MCI, >= 1 AD); {unrated} subject(s) without a CDR "
                              "left out. The 'mri' modality is the grey-matter map, the 'pet' one the "
                              "white-matter map. OASIS Data Usage Agreement applies."),
        }
        (partial / "dataset_description.json").write_text(json.dumps(description, indent=2) + "\n")
        os.rename(partial, out_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", help="the cohort folder to write (must not exist or be empty)")
    parser.add_argument("--n-subjects", type=int, default=None, help="only the first N subjects")
    parser.add_argument("--nilearn-data-dir", default=None, help="nilearn's download folder (default ~/nilearn_data)")
    args = parser.parse_args(argv)
    try:
        root = fetch_oasis_vbm_cohort(args.out_dir, args.n_subjects, args.nilearn_data_dir)
    except (ValueError, ConnectionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"OASIS-1 VBM cohort written to {root}; load it with neurohash_lite.data.load_cohort({str(root)!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
