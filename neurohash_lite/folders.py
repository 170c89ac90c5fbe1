"""Write a new folder whole or not at all.

Every command that writes a folder of scans (the shipped demo folder, a
copy of a reader's BIDS folder, a registered or deliberately moved copy)
writes it under a hidden temporary name beside the target and renames it
when it is complete, so an interrupted run never leaves a half-written
folder under the name a later command would read.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

__all__ = ["new_folder"]


@contextmanager
def new_folder(out: str | os.PathLike):
    """Yield a temporary folder that becomes ``out`` when the block ends without an error.

    Parameters
    ----------
    out : path-like
        The folder to create; it must not exist. Its parent is created if needed.

    Yields
    ------
    pathlib.Path
        An empty temporary folder beside ``out`` (``.<name>.<random>``) to write into.

    Raises
    ------
    ValueError
        If ``out`` exists, before anything is written, or if it appeared while
        the block ran (nothing is overwritten).

    Notes
    -----
    On any error, the temporary folder is removed and the error propagates.
    The finished folder gets mode 0o755 (``tempfile.mkdtemp`` makes 0o700).
    """
    out = Path(out)
    if out.exists():
        raise ValueError(f"{out} exists; choose a new folder (nothing is overwritten)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        if out.exists():
            raise ValueError(f"{out} exists; choose a new folder (nothing is overwritten)")
        os.chmod(tmp, 0o755)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
