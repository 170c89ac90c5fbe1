"""Reading a BIDS-like cohort folder, with a clear error for every bad input.

The layout read here is the one :func:`~neurohash_lite.data.make_synthetic_cohort`
writes and the one Clinica's ``adni-to-bids`` and ``oasis3-to-bids`` produce
(Gorgolewski et al., 2016; Routier et al., 2021)::

    root/participants.tsv                      participant_id, diagnosis[, age, severity]
    root/sub-<label>/[ses-<s>/]anat/sub-<label>[_ses-<s>]..._T1w.nii[.gz]
    root/sub-<label>/[ses-<s>/]pet/sub-<label>[_ses-<s>]..._pet.nii[.gz]

The two modalities are found by the suffix of their file name (``T1w`` and
``pet`` unless the folder's ``dataset_description.json`` names others under
``"NeuroHashModalities"``, as the OASIS-1 VBM script does). When a subject has
several sessions, the first one (in sorted order) that holds a T1w image is
used and the PET must come from the same session; when a session has several
PET images, those whose name mentions FDG are preferred.

Rules (DESIGN.md section 9):

- a subject listed in ``participants.tsv`` with no image at all is an error, and
  so is an image in a ``sub-*`` folder of a subject that is not listed;
- a subject with a T1w image and no PET is *not* an error: it is kept for
  single-modality use and never paired;
- a subject with a PET and no T1w image is skipped and reported;
- an unknown diagnosis or a missing column is an error naming the file;
- :func:`load_volume` rejects files that are not NIfTI, are corrupt or
  truncated, hold NaN or infinite voxels, or have several frames;
- an empty or ``n/a`` diagnosis is an error that points to
  :func:`neurohash_lite.data.clinical.fill_diagnoses` (MMSE and CDR);
- an image whose grid (shape, voxel size) differs from most images of its
  modality is not an error: it is resampled like every image, and
  :attr:`BidsLayout.notes` says so.

:func:`copy_folder` copies a folder keeping only the subjects a
``participants.tsv`` lists and leaving out chosen files;
:func:`folder_digest` names a folder by a digest of its file list (results
files record it instead of any data).

pybids' ``BIDSLayout`` could do the walking; it is not used because the
errors above would still have to be written here and it brings nine
packages and an SQLite index with it (Chapter 10 weighs it).

References
----------
Gorgolewski et al., Scientific Data 3 (2016) 160044 (BIDS).
Routier et al., Frontiers in Neuroinformatics 15 (2021) 689675 (Clinica).
"""

from __future__ import annotations

import csv
import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..folders import new_folder

__all__ = [
    "DIAGNOSIS_CODES",
    "Participants",
    "BidsLayout",
    "read_tsv",
    "read_participants",
    "scan_layout",
    "load_volume",
    "copy_folder",
    "folder_digest",
]

#: Diagnosis strings understood by default (case-insensitive) and their labels.
DIAGNOSIS_CODES: dict[str, int] = {
    "nc": 0, "cn": 0, "hc": 0, "control": 0, "normal": 0, "cognitively normal": 0,
    "mci": 1, "emci": 1, "lmci": 1,
    "ad": 2, "dementia": 2, "alzheimer's disease": 2,
}

NIFTI_ENDINGS = (".nii", ".nii.gz")


@dataclass(frozen=True)
class Participants:
    """The rows of ``participants.tsv``.

    Attributes
    ----------
    path : pathlib.Path
    participant_ids : list of str
        With the ``sub-`` prefix.
    labels : ndarray (n,), int64
        0 NC, 1 MCI, 2 AD.
    age : ndarray (n,), float64
        Years; NaN where absent (or no ``age`` column).
    severity : ndarray (n,), float64
        The synthetic cohort's latent severity; NaN for real data.
    """

    path: Path
    participant_ids: list[str]
    labels: np.ndarray
    age: np.ndarray
    severity: np.ndarray


def _float_or_nan(value: str | None) -> float:
    try:
        return float(value) if value not in (None, "", "n/a", "NA", "nan") else float("nan")
    except ValueError:
        return float("nan")


def read_tsv(path: Path) -> tuple[list[str], list[dict]]:
    """A tab-separated table's column names and rows, every name and value stripped of spaces.

    Returns
    -------
    columns : list of str
    rows : list of dict of str to str
        Empty cells are ``""``; a short row's missing cells too.
    """
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        columns = [c.strip() for c in (reader.fieldnames or [])]
        rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    return columns, rows


def read_participants(
    path: str | os.PathLike,
    diagnosis_column: str = "diagnosis",
    diagnosis_map: dict[str, int] | None = None,
) -> Participants:
    """Read and check a BIDS ``participants.tsv``.

    Parameters
    ----------
    path : path-like
        The tab-separated file.
    diagnosis_column : str
        Column holding the diagnosis (Clinica's ADNI conversion calls it
        ``diagnosis_sc``).
    diagnosis_map : dict of str to int, optional
        Extra or overriding diagnosis strings (case-insensitive) to labels
        0, 1, 2, merged over :data:`DIAGNOSIS_CODES`.

    Returns
    -------
    Participants

    Raises
    ------
    ValueError
        If the file is missing or empty, lacks ``participant_id`` or the
        diagnosis column, repeats a participant, or holds a diagnosis that is
        not understood.
    """
    path = Path(path)
    codes = dict(DIAGNOSIS_CODES)
    for key, value in (diagnosis_map or {}).items():
        if value not in (0, 1, 2):
            raise ValueError(f"diagnosis_map[{key!r}]={value!r} must be 0 (NC), 1 (MCI) or 2 (AD)")
        codes[str(key).strip().lower()] = int(value)
    if not path.is_file():
        raise ValueError(f"{path}: participants.tsv not found; a BIDS folder lists its subjects there")
    columns, rows = read_tsv(path)
    for column in ("participant_id", diagnosis_column):
        if column not in columns:
            raise ValueError(
                f"{path}: column {column!r} is missing (columns found: {columns}); "
                "participants.tsv needs participant_id and a diagnosis column"
                + ("" if column == "participant_id" else " (see the diagnosis_column argument)")
            )
    if not rows:
        raise ValueError(f"{path}: no participants listed")
    ids, labels = [], []
    for line, row in enumerate(rows, start=2):
        participant = row["participant_id"]
        if not participant:
            raise ValueError(f"{path}, line {line}: empty participant_id")
        if not participant.startswith("sub-"):
            participant = f"sub-{participant}"
        diagnosis = row[diagnosis_column]
        if diagnosis.lower() in ("", "n/a", "na", "nan"):
            raise ValueError(
                f"{path}, line {line}: the diagnosis of {participant} is missing ({diagnosis or 'empty'!r}); "
                "fill it, or derive it from MMSE and CDR with "
                "neurohash_lite.data.clinical.fill_diagnoses (ADNI's criteria)"
            )
        if diagnosis.lower() not in codes:
            raise ValueError(
                f"{path}, line {line}: unknown diagnosis {diagnosis!r} for {participant}; "
                f"known: {sorted(codes)} (add others with diagnosis_map, e.g. {{'SMC': 0}})"
            )
        ids.append(participant)
        labels.append(codes[diagnosis.lower()])
    duplicates = sorted({p for p in ids if ids.count(p) > 1})
    if duplicates:
        raise ValueError(f"{path}: participant(s) listed more than once: {duplicates[:5]}")
    return Participants(
        path=path,
        participant_ids=ids,
        labels=np.asarray(labels, dtype=np.int64),
        age=np.asarray([_float_or_nan(row.get("age")) for row in rows]),
        severity=np.asarray([_float_or_nan(row.get("severity")) for row in rows]),
    )


@dataclass(frozen=True)
class BidsLayout:
    """Which image files a cohort folder holds for each listed participant.

    Attributes
    ----------
    root : pathlib.Path
    participants : Participants
        Only the participants that have a T1w image, in ``participants.tsv`` order.
    mri_paths : list of pathlib.Path
        One T1w (or ``mri_suffix``) image per participant.
    pet_paths : list of pathlib.Path or None
        The PET image of each participant, None for MRI-only subjects.
    pet_only : list of str
        Listed participants that have a PET but no T1w image (skipped).
    notes : list of str
        Choices made on the way (several sessions, runs or tracers).
    mri_suffix, pet_suffix : str
    """

    root: Path
    participants: Participants
    mri_paths: list[Path]
    pet_paths: list[Path | None]
    pet_only: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    mri_suffix: str = "T1w"
    pet_suffix: str = "pet"


def _is_nifti(path: Path) -> bool:
    return path.name.endswith(NIFTI_ENDINGS)


def _stem(path: Path) -> str:
    name = path.name
    for ending in (".nii.gz", ".nii"):
        if name.endswith(ending):
            return name[: -len(ending)]
    return name


def _session_of(path: Path, subject_dir: Path) -> str:
    for part in path.relative_to(subject_dir).parts[:-1]:
        if part.startswith("ses-"):
            return part
    return ""


def modality_suffixes(root: str | os.PathLike) -> tuple[str, str]:
    """The file-name suffixes of the two modalities of a cohort folder.

    ``("T1w", "pet")`` unless ``dataset_description.json`` holds
    ``"NeuroHashModalities": {"mri": ..., "pet": ...}``.
    """
    try:
        description = json.loads((Path(root) / "dataset_description.json").read_text(encoding="utf-8"))
        names = description["NeuroHashModalities"]
        return str(names["mri"]), str(names["pet"])
    except (OSError, ValueError, KeyError, TypeError):
        return "T1w", "pet"


def scan_layout(
    root: str | os.PathLike,
    *,
    diagnosis_column: str = "diagnosis",
    diagnosis_map: dict[str, int] | None = None,
    mri_suffix: str | None = None,
    pet_suffix: str | None = None,
    session: str | None = None,
) -> BidsLayout:
    """Find every listed participant's images and check the folder's consistency.

    Parameters
    ----------
    root : path-like
        The cohort folder.
    diagnosis_column, diagnosis_map
        See :func:`read_participants`.
    mri_suffix, pet_suffix : str, optional
        File-name suffixes of the two modalities (default: from
        :func:`modality_suffixes`).
    session : str, optional
        Use this session (``"M000"`` or ``"ses-M000"``) instead of each
        subject's first one.

    Returns
    -------
    BidsLayout

    Raises
    ------
    ValueError
        If ``root`` is not a folder, ``participants.tsv`` is bad, a listed
        participant has no image, or an image belongs to an unlisted subject.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ValueError(f"root={str(root)!r} is not a folder")
    default_mri, default_pet = modality_suffixes(root)
    mri_suffix = mri_suffix or default_mri
    pet_suffix = pet_suffix or default_pet
    if session is not None and not str(session).startswith("ses-"):
        session = f"ses-{session}"
    participants = read_participants(root / "participants.tsv", diagnosis_column, diagnosis_map)
    listed = set(participants.participant_ids)

    subject_dirs = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("sub-"))
    for subject_dir in subject_dirs:
        if subject_dir.name not in listed:
            images = sorted(p for p in subject_dir.rglob("*") if _is_nifti(p))
            if images:
                raise ValueError(
                    f"{images[0]}: image of subject {subject_dir.name}, who is not listed in "
                    f"{participants.path}; add a row for it or remove the folder"
                )

    keep, mri_paths, pet_paths, pet_only, notes = [], [], [], [], []
    for index, participant in enumerate(participants.participant_ids):
        subject_dir = root / participant
        images = sorted(p for p in subject_dir.rglob(f"{participant}_*") if _is_nifti(p)) if subject_dir.is_dir() else []
        mri = [p for p in images if _stem(p).endswith(f"_{mri_suffix}")]
        pet = [p for p in images if _stem(p).endswith(f"_{pet_suffix}")]
        if not mri and not pet:
            raise ValueError(
                f"{participants.path}: {participant} is listed but has no {mri_suffix} or "
                f"{pet_suffix} image under {subject_dir}"
            )
        sessions = sorted({_session_of(p, subject_dir) for p in mri})
        if session is not None:
            chosen = session if session in sessions else None
        else:
            chosen = sessions[0] if sessions else None
        if chosen is None:
            if pet:
                pet_only.append(participant)
                continue
            raise ValueError(
                f"{participants.path}: {participant} has no {mri_suffix} image in session {session}"
            )
        if len(sessions) > 1:
            notes.append(f"{participant}: {len(sessions)} sessions, using {chosen or 'the one without a label'}")
        mri = [p for p in mri if _session_of(p, subject_dir) == chosen]
        pet = [p for p in pet if _session_of(p, subject_dir) == chosen]
        if len(mri) > 1:
            notes.append(f"{participant}: {len(mri)} {mri_suffix} images, using {mri[0].name}")
        fdg = [p for p in pet if "fdg" in p.name.lower()]
        pet = fdg or pet
        if len(pet) > 1:
            notes.append(f"{participant}: {len(pet)} {pet_suffix} images, using {pet[0].name}")
        keep.append(index)
        mri_paths.append(mri[0])
        pet_paths.append(pet[0] if pet else None)

    notes += _grid_notes(participants, keep, mri_paths, pet_paths, mri_suffix, pet_suffix)
    keep = np.asarray(keep, dtype=np.int64)
    if len(keep) == 0:
        raise ValueError(f"root={str(root)!r}: no participant has a {mri_suffix} image")
    kept = Participants(
        path=participants.path,
        participant_ids=[participants.participant_ids[i] for i in keep],
        labels=participants.labels[keep],
        age=participants.age[keep],
        severity=participants.severity[keep],
    )
    return BidsLayout(root, kept, mri_paths, pet_paths, pet_only, notes, mri_suffix, pet_suffix)


def _grid_of(path: Path):
    """(shape, voxel sizes in mm) from the header alone, or None if unreadable (load_volume reports it)."""
    import nibabel as nib

    try:
        header = nib.load(path).header
        return tuple(int(n) for n in header.get_data_shape()[:3]), tuple(round(float(z), 2) for z in header.get_zooms()[:3])
    except Exception:  # noqa: BLE001 - any unreadable file is reported by load_volume with its name
        return None


def _grid_notes(participants, keep, mri_paths, pet_paths, mri_suffix, pet_suffix) -> list[str]:
    """A note for each image whose grid differs from the most common grid of its modality."""
    notes = []
    for suffix, paths in ((mri_suffix, mri_paths), (pet_suffix, pet_paths)):
        grids = {i: _grid_of(p) for i, p in enumerate(paths) if p is not None}
        known = [g for g in grids.values() if g is not None]
        if len(set(known)) < 2:
            continue
        common = max(set(known), key=known.count)
        for i, grid in grids.items():
            if grid is not None and grid != common:
                subject = participants.participant_ids[keep[i]]
                describe = lambda g: f"{'x'.join(map(str, g[0]))} voxels of {'x'.join(f'{z:g}' for z in g[1])} mm"
                notes.append(f"{subject}: {suffix} on a grid of {describe(grid)}, most {suffix} images have "
                             f"{describe(common)}; resampled onto the working grid like every image")
    return notes


def folder_digest(root: str | os.PathLike) -> str:
    """SHA-256 of a folder's file list: each file's relative path and size, sorted (no content is read).

    What a results file records to name the data it was made on without
    holding any of it.
    """
    import hashlib

    root = Path(root)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "derivatives" not in p.relative_to(root).parts):
        digest.update(f"{path.relative_to(root).as_posix()}\t{path.stat().st_size}\n".encode())
    return digest.hexdigest()


def copy_folder(src: str | os.PathLike, out: str | os.PathLike, *, participants: str | os.PathLike | None = None,
                exclude=()) -> Path:
    """Copy a BIDS folder, keeping only the subjects ``participants.tsv`` lists and leaving out some files.

    Parameters
    ----------
    src : path-like
    out : path-like
        A new folder (written under a temporary name, then renamed).
    participants : path-like, optional
        A participants.tsv to use instead of ``src``'s (e.g. with diagnoses
        filled in by :func:`neurohash_lite.data.clinical.fill_diagnoses`);
        subjects it does not list are not copied.
    exclude : sequence of path-like
        Files of ``src`` not to copy (e.g. a 4D image the loader refuses).

    Returns
    -------
    pathlib.Path
    """
    import shutil

    src, out = Path(src), Path(out)
    participants = Path(participants) if participants is not None else src / "participants.tsv"
    excluded = {Path(p).resolve() for p in exclude}
    with new_folder(out) as tmp:
        listed = {row.get("participant_id", "") for row in read_tsv(participants)[1]}
        listed = {p if p.startswith("sub-") else f"sub-{p}" for p in listed}
        for path in sorted(src.rglob("*")):
            relative = path.relative_to(src)
            if not path.is_file() or path.resolve() in excluded or relative.parts[0] == "participants.tsv":
                continue
            if relative.parts[0].startswith("sub-") and relative.parts[0] not in listed:
                continue
            (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, tmp / relative)
        shutil.copy2(participants, tmp / "participants.tsv")
    return out


def load_volume(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one 3D NIfTI image and check it.

    Parameters
    ----------
    path : path-like
        A ``.nii`` or ``.nii.gz`` file.

    Returns
    -------
    data : ndarray, shape (I, J, K), float32
        Scaling factors applied. A 4D image with a single frame is squeezed.
    affine : ndarray, shape (4, 4), float64
        Voxel-to-world (mm) affine.

    Raises
    ------
    ValueError
        Naming the file, if it is missing, is not a NIfTI image, is corrupt or
        truncated, is not 3D (or 4D with one frame), or holds NaN or infinite
        voxels.
    """
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    try:
        image = nib.load(path)
    except (ImageFileError, OSError, EOFError, zlib.error, ValueError) as error:
        raise ValueError(f"{path}: not a readable NIfTI image ({error})") from error
    if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)):
        raise ValueError(f"{path}: not a NIfTI image (nibabel reads it as {type(image).__name__})")
    shape = image.shape
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    elif len(shape) == 4:
        raise ValueError(
            f"{path}: a 4D image with {shape[3]} frames where one 3D volume is expected; "
            "average the frames first, e.g. nilearn.image.mean_img(path).to_filename(new_path)"
        )
    if len(shape) != 3:
        raise ValueError(f"{path}: expected a 3D image, got shape {image.shape}")
    try:
        data = np.asarray(image.dataobj, dtype=np.float32).reshape(shape)
    except (OSError, EOFError, zlib.error, ValueError) as error:
        raise ValueError(f"{path}: corrupt or truncated image data ({error})") from error
    bad = int(np.size(data) - np.count_nonzero(np.isfinite(data)))
    if bad:
        raise ValueError(f"{path}: {bad} voxel(s) are NaN or infinite; fix or mask them first")
    return data, np.asarray(image.affine, dtype=np.float64)
