"""Encode a BIDS archive with a saved network and search it: ``python -m neurohash_lite.search``.

::

    python -m neurohash_lite.search --checkpoint model.pt --archive /data/bids --query sub-0042 \\
        [--modality mri] [--k 10] [--include-self] [--json neighbours.json]

A query subject's scan of one modality (``--modality mri``: its sMRI) is
encoded by the network of the checkpoint and compared, by Hamming distance,
with the codes of the other modality of every paired subject of the archive
(M→P; ``--modality pet`` searches P→M). The query's own other scan is left
out unless ``--include-self``. The archive's codes are cached beside it, in
``<archive>/derivatives/neurohash/`` (BIDS keeps derived files there), keyed
by the checkpoint and the archive's file list, so a second query encodes
nothing. Ties in distance are ranked by the archive's subject order, as
:class:`~neurohash_lite.retrieval.HammingIndex` ranks them.

:func:`save_search_checkpoint` writes a checkpoint this command reads (the
weights, and the network's and input grid's sizes); :func:`search` is the
same search for a notebook.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

__all__ = ["save_search_checkpoint", "load_search_network", "archive_codes", "search", "SearchResult", "main"]

CHECKPOINT_KIND = "neurohash-search/1"
MODALITIES = ("mri", "pet")


def save_search_checkpoint(path, network, cohort, *, metadata: dict | None = None) -> Path:
    """Save a trained :class:`~neurohash_lite.models.CrossModalHashNet` with what encoding new scans needs.

    Parameters
    ----------
    path : path-like
        The checkpoint (written to a temporary name, then renamed).
    network : CrossModalHashNet
    cohort : Cohort
        The cohort it was trained on: its input grid (2D slice levels and
        size, or 3D voxel size) is stored, so an archive is loaded the same way.
    metadata : dict, optional
        Anything else to keep (plain values).

    Returns
    -------
    pathlib.Path
    """
    from .train import save_checkpoint

    config = {
        "kind": CHECKPOINT_KIND,
        "network": {"n_bits": int(network.n_bits), "in_channels": int(cohort.mri.shape[1]),
                    "spatial_dims": int(cohort.spatial_dims), "width": float(network.mri_branch.width)},
        "grid": {"spatial_dims": int(cohort.spatial_dims), "image_size": int(cohort.image_size or 64),
                 "n_slices": len(cohort.slice_levels_mm) or 3,
                 "slice_levels_mm": [float(z) for z in cohort.slice_levels_mm],
                 "voxel_size_mm": float(cohort.voxel_size_mm)},
        **(metadata or {}),
    }
    return save_checkpoint(path, network, metadata=config)


def load_search_network(path):
    """Rebuild the network of a :func:`save_search_checkpoint` file.

    Returns
    -------
    network : CrossModalHashNet, in eval mode on the CPU
    metadata : dict
        ``metadata["grid"]`` holds the input grid.

    Raises
    ------
    ValueError
        Naming the file, if it is missing, unreadable, or not such a checkpoint.
    """
    import torch

    from .models import CrossModalHashNet

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--checkpoint {path}: file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        metadata = payload["metadata"]
    except Exception as error:  # torch raises several types for a corrupt file
        raise ValueError(f"--checkpoint {path}: not a readable checkpoint ({error})") from None
    if not isinstance(metadata, dict) or metadata.get("kind") != CHECKPOINT_KIND:
        raise ValueError(f"--checkpoint {path}: not a search checkpoint (write one with "
                         "neurohash_lite.search.save_search_checkpoint)")
    network = CrossModalHashNet(**metadata["network"])
    try:
        network.load_state_dict(payload["model"])
    except RuntimeError as error:
        raise ValueError(f"--checkpoint {path}: its weights do not fit its network sizes ({error})") from None
    return network.eval(), metadata


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _encode(network, images: np.ndarray, modality: str, batch_size: int = 64) -> np.ndarray:
    import torch

    from .retrieval import sign_codes

    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size], dtype=np.float32))
            out.append(sign_codes(network.encode(batch, modality).float().numpy()))
    n_bits = int(network.n_bits)
    return np.concatenate(out) if out else np.zeros((0, n_bits), np.int8)


def archive_codes(checkpoint, archive, *, cache: bool = True, verbose: bool = False) -> dict:
    """The ±1 codes of every scan of a BIDS archive under a checkpoint's network (cached beside the archive).

    Parameters
    ----------
    checkpoint : path-like
        A :func:`save_search_checkpoint` file.
    archive : path-like
        A BIDS folder (:func:`~neurohash_lite.data.bids.scan_layout` reads it).
    cache : bool
        Read and write ``<archive>/derivatives/neurohash/codes-<key>.npz``.
    verbose : bool

    Returns
    -------
    dict
        ``subjects`` (n,) str, ``labels`` (n,) int64, ``has_pet`` (n,) bool,
        ``mri`` (n, K) int8 ±1 and ``pet`` (n, K) int8 ±1 (rows of subjects
        with no PET are 0), in ``participants.tsv`` order.
    """
    from .data.bids import folder_digest, scan_layout
    from .data.cache import load_arrays, save_arrays
    from .data.cohort import load_cohort

    checkpoint, archive = Path(checkpoint), Path(archive)
    network, metadata = load_search_network(checkpoint)
    if not archive.is_dir():
        raise ValueError(f"--archive {archive}: not a folder")
    try:
        layout = scan_layout(archive)
    except ValueError as error:
        raise ValueError(f"--archive {archive} is not a BIDS folder this command reads: {error}") from None
    key = hashlib.sha256(f"{_file_sha256(checkpoint)}\n{folder_digest(archive)}".encode()).hexdigest()[:24]
    cache_path = archive / "derivatives" / "neurohash" / f"codes-{key}.npz"
    subjects = np.asarray(layout.participants.participant_ids)
    cached = load_arrays(cache_path) if cache else None
    if cached is not None and np.array_equal(cached.get("subjects"), subjects):
        if verbose:
            print(f"codes read from {cache_path}")
        return cached
    grid = metadata["grid"]
    cohort = load_cohort(archive, grid["spatial_dims"], grid["image_size"], grid["n_slices"], grid["voxel_size_mm"],
                         slice_levels_mm=grid["slice_levels_mm"] or None, cache_dir=False)
    n_bits = int(network.n_bits)
    pet = np.zeros((cohort.n_subjects, n_bits), np.int8)
    pet[cohort.paired_index] = _encode(network, cohort.pet, "pet")
    codes = {"subjects": cohort.subject_ids, "labels": cohort.labels, "has_pet": cohort.has_pet,
             "mri": _encode(network, cohort.mri, "mri"), "pet": pet}
    if cache:
        save_arrays(cache_path, codes)
        if verbose:
            print(f"encoded {cohort.n_subjects} MRI and {cohort.n_paired} PET scans; codes cached in {cache_path}")
    return codes


@dataclass
class SearchResult:
    """Neighbours of one query.

    Attributes
    ----------
    query : str
    modality : str
        The query's modality; the neighbours are scans of the other one.
    query_diagnosis : str
    neighbours : list of dict
        ``rank`` (1-based), ``subject``, ``distance`` (Hamming, bits) and ``diagnosis``, nearest first.
    n_bits : int
    """

    query: str
    modality: str
    query_diagnosis: str
    neighbours: list
    n_bits: int

    def table(self) -> str:
        """The neighbours as aligned text."""
        other = "PET" if self.modality == "mri" else "MRI"
        lines = [f"{self.query} ({self.query_diagnosis}), its {self.modality.upper()} against the archive's "
                 f"{other} ({self.n_bits}-bit codes)", f"{'rank':>4}  {'subject':<12}{'distance':>9}  diagnosis"]
        lines += [f"{n['rank']:>4}  {n['subject']:<12}{n['distance']:>9}  {n['diagnosis']}" for n in self.neighbours]
        return "\n".join(lines)


def search(checkpoint, archive, query: str, *, modality: str = "mri", k: int = 10, include_self: bool = False,
           cache: bool = True) -> SearchResult:
    """The ``k`` nearest scans of the other modality to a query subject's scan.

    Parameters
    ----------
    checkpoint, archive : path-like
        See :func:`archive_codes`.
    query : str
        A participant id, with or without ``sub-``.
    modality : {"mri", "pet"}
        The query's modality (``"mri"``: M→P).
    k : int
        Neighbours to return (fewer if the archive holds fewer).
    include_self : bool
        Keep the query subject's own scan of the other modality.
    cache : bool

    Returns
    -------
    SearchResult

    Raises
    ------
    ValueError
        Naming the argument: a missing or bad checkpoint, a folder that is
        not BIDS, an unknown subject or one without a scan of ``modality``.
    """
    from .data.synthetic import DIAGNOSES
    from .retrieval import HammingIndex

    if modality not in MODALITIES:
        raise ValueError(f"--modality {modality!r} must be one of {MODALITIES}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"--k {k!r} must be a positive integer")
    query = query if str(query).startswith("sub-") else f"sub-{query}"
    codes = archive_codes(checkpoint, archive, cache=cache)
    subjects = [str(s) for s in codes["subjects"]]
    if query not in subjects:
        raise ValueError(f"--query {query}: no such subject with an MRI in {Path(archive) / 'participants.tsv'} "
                         f"(it lists {', '.join(subjects[:5])}{', ...' if len(subjects) > 5 else ''})")
    q = subjects.index(query)
    has_pet = np.asarray(codes["has_pet"], dtype=bool)
    if modality == "pet" and not has_pet[q]:
        raise ValueError(f"--query {query} has no PET in {archive}; search with --modality mri")
    other = "pet" if modality == "mri" else "mri"
    rows = np.flatnonzero(has_pet)
    if not include_self:
        rows = rows[rows != q]
    if len(rows) == 0:
        raise ValueError(f"--archive {archive}: no paired subject to search besides {query}")
    n_bits = int(codes["mri"].shape[1])
    index = HammingIndex(n_bits, backend="numpy")
    index.add(codes[other][rows])
    found, distances = index.search(codes[modality][q:q + 1], k=min(int(k), len(rows)))
    neighbours = [{"rank": r + 1, "subject": subjects[rows[i]], "distance": int(d),
                   "diagnosis": DIAGNOSES[int(codes["labels"][rows[i]])]}
                  for r, (d, i) in enumerate(zip(distances[0], found[0]))]
    return SearchResult(query, modality, DIAGNOSES[int(codes["labels"][q])], neighbours, n_bits)


def _write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp",
                                         delete=False, encoding="utf-8")
    try:
        with handle:
            json.dump(payload, handle, indent=2)
            handle.write("\n")
        os.chmod(handle.name, 0o644)
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m neurohash_lite.search",
                                     description="Search a BIDS archive with a saved cross-modal hashing network.")
    parser.add_argument("--checkpoint", required=True, help="a file written by save_search_checkpoint")
    parser.add_argument("--archive", required=True, help="the BIDS folder to search (codes are cached in it, "
                                                         "under derivatives/neurohash)")
    parser.add_argument("--query", required=True, help="a participant id, e.g. sub-0042")
    parser.add_argument("--modality", default="mri", choices=MODALITIES,
                        help="the query's scan (mri: M→P, pet: P→M); default mri")
    parser.add_argument("--k", type=int, default=10, help="neighbours to print (default 10)")
    parser.add_argument("--include-self", action="store_true", help="keep the query subject's own other scan")
    parser.add_argument("--no-cache", action="store_true", help="encode the archive again, write no cache")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the neighbours as JSON")
    args = parser.parse_args(argv)
    try:
        result = search(args.checkpoint, args.archive, args.query, modality=args.modality, k=args.k,
                        include_self=args.include_self, cache=not args.no_cache)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(result.table())
    if args.json:
        _write_json(Path(args.json), asdict(result))
        print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
