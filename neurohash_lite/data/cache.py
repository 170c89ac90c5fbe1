"""An on-disk cache of preprocessed arrays, keyed by everything that changes them.

A cache entry is one uncompressed ``.npz`` file named by the SHA-256 of a
JSON description of its inputs: the cohort folder, a fingerprint of its files
(name, size and modification time of ``participants.tsv`` and every image
used), every preprocessing parameter and :data:`CACHE_VERSION`. Change any of
them and the key changes; nothing is ever served stale. Entries are written to
a temporary name and renamed, so a crash never leaves half a file; an
unreadable entry is simply recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["CACHE_VERSION", "files_fingerprint", "cache_key", "load_arrays", "save_arrays"]

#: Bump when preprocessing changes in a way the parameters do not show.
CACHE_VERSION = 1


def files_fingerprint(paths, root: str | os.PathLike) -> str:
    """SHA-256 over the relative path, size and modification time of each file."""
    root = Path(root)
    digest = hashlib.sha256()
    for path in paths:
        path = Path(path)
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cache_key(parameters: dict) -> str:
    """SHA-256 of the JSON of ``parameters`` (sorted keys) and :data:`CACHE_VERSION`."""
    text = json.dumps({"cache_version": CACHE_VERSION, **parameters}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def load_arrays(path: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """Read a cache entry; None when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as entry:
            return {name: entry[name] for name in entry.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError):
        return None


def save_arrays(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Write a cache entry atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp", delete=False)
    try:
        with handle:
            np.savez(handle, **arrays)
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return path
