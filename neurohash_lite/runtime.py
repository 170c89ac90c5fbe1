"""Where a chapter runs: the device, the seed, the scale tier and the environment.

Every chapter calls these four things once, near its top:

>>> tier = resolve_tier("smoke")                    # sizes for this run
>>> tier.preset, tier.image_size, tier.epochs
('tiny', 32, 2)
>>> device = select_device("cpu")                  # "auto": CUDA when present, else CPU
>>> generator = seed_everything(0)                 # reproducible numpy/torch
>>> first = torch.rand(3)
>>> generator = seed_everything(0)
>>> torch.equal(first, torch.rand(3))
True
>>> print(environment_report(device))              # what it ran on  # doctest: +ELLIPSIS
python ...
platform ...
device cpu
...

The tiers are those of the design (DESIGN.md §2): ``smoke`` for the test
suite, ``book`` (the default) for building the book on a laptop CPU, and
``paper`` for Colab or a workstation GPU.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import platform
import random
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "Tier",
    "TIERS",
    "resolve_tier",
    "select_device",
    "seed_everything",
    "data_dir",
    "EnvironmentReport",
    "environment_report",
    "run_summary",
]

COLAB_GPU_HINT = (
    "In Colab choose Runtime > Change runtime type > T4 GPU (or any GPU) and "
    "run the chapter again."
)


# --------------------------------------------------------------------------
# Scale tiers
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Tier:
    """Every size a chapter derives from its ``scale`` parameter.

    Attributes
    ----------
    name : str
        ``"smoke"``, ``"book"`` or ``"paper"`` (or a custom name).
    preset : str
        Synthetic cohort preset (``"tiny"``, ``"adni2"``, ``"oasis3"``, ``"adni1"``).
    spatial_dims : int
        2 for stacks of axial slices, 3 for whole volumes.
    image_size : int
        In-plane size in pixels of the 2D slices (``image_size x image_size``).
    n_slices : int
        Number of axial slices per scan, stacked as input channels (2D only).
    voxel_size_mm : float
        Isotropic voxel size in mm of the working grid for 3D volumes.
    bits : tuple of int
        Code lengths K a chapter trains and evaluates.
    epochs : int
        Training epochs of the main runs.
    batch_size : int
        Subjects per mini-batch.
    width : float
        Width multiplier of the CNN backbone (1.0 is the full AlexNet-style net).
    seeds : tuple of int
        Seeds over which results are repeated (mean and std reported).
    """

    name: str
    preset: str
    spatial_dims: int
    image_size: int
    n_slices: int
    voxel_size_mm: float
    bits: tuple[int, ...]
    epochs: int
    batch_size: int
    width: float
    seeds: tuple[int, ...]


TIERS: dict[str, Tier] = {
    # The test suite: every chapter under 60 s on a 2-core CPU.
    "smoke": Tier(
        name="smoke", preset="tiny", spatial_dims=2, image_size=32, n_slices=3,
        voxel_size_mm=6.0, bits=(16,), epochs=2, batch_size=16, width=0.25,
        seeds=(0,),
    ),
    # Building the book on a laptop CPU: the whole book under 25 min.
    "book": Tier(
        name="book", preset="adni2", spatial_dims=2, image_size=64, n_slices=3,
        voxel_size_mm=6.0, bits=(16, 32, 64, 128), epochs=30, batch_size=32,
        width=0.5, seeds=(0,),
    ),
    # Colab or a workstation GPU: the seeds' protocol on 3D volumes.
    "paper": Tier(
        name="paper", preset="adni1", spatial_dims=3, image_size=64, n_slices=3,
        voxel_size_mm=4.0, bits=(16, 32, 64, 128), epochs=100, batch_size=32,
        width=1.0, seeds=(0, 1, 2),
    ),
}


def resolve_tier(scale: str = "book", **overrides) -> Tier:
    """Return the sizes of a scale tier, with explicit overrides applied.

    Parameters
    ----------
    scale : {"smoke", "book", "paper"}
        The tier (DESIGN.md §2).
    **overrides
        Any :class:`Tier` field, e.g. ``epochs=5`` or ``bits=(32,)``. A value of
        ``None`` keeps the tier's own value, so a chapter can pass its optional
        parameters straight through.

    Returns
    -------
    Tier

    Raises
    ------
    ValueError
        If ``scale`` is not a known tier or an override names no field.

    Examples
    --------
    >>> resolve_tier("smoke", epochs=1).epochs
    1
    """
    if scale not in TIERS:
        raise ValueError(
            f"scale={scale!r} is not a tier; choose one of {sorted(TIERS)}"
        )
    fields = {f.name for f in dataclasses.fields(Tier)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(
            f"unknown tier override(s) {unknown}; a Tier has the fields {sorted(fields)}"
        )
    given = {k: v for k, v in overrides.items() if v is not None}
    for key in ("bits", "seeds"):
        if key in given:
            given[key] = tuple(int(v) for v in np.atleast_1d(given[key]))
    return dataclasses.replace(TIERS[scale], **given)


# --------------------------------------------------------------------------
# Device and seeds
# --------------------------------------------------------------------------
def select_device(device: str | torch.device = "auto", *, warn: bool = True) -> torch.device:
    """Pick the device a chapter trains on.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda"} or str or torch.device
        ``"auto"`` takes the first CUDA GPU when one is present and the CPU
        otherwise, with a warning that says how to get a GPU in Colab. Any
        explicit torch device string (``"cuda:1"``) is taken as given.
    warn : bool, default True
        False leaves the warning out (a chapter says it in its
        :func:`run_summary` line instead).

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        If ``device`` asks for CUDA on a machine without it, or is not a device.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if not warn:
            return torch.device("cpu")
        warnings.warn(
            "No CUDA GPU found: running on the CPU, which is fine at the 'smoke' "
            f"and 'book' tiers but slow at 'paper'. {COLAB_GPU_HINT}",
            UserWarning,
            stacklevel=2,
        )
        return torch.device("cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"device={device!r} is not a device; use 'auto', 'cpu' or 'cuda'"
        ) from error
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} asks for CUDA but torch sees no GPU; use "
            f"device='auto' to fall back to the CPU. {COLAB_GPU_HINT}"
        )
    return chosen


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, numpy and torch (CPU and CUDA) for a reproducible run.

    Also asks torch for deterministic algorithms where it has them
    (``warn_only``, so an op without one warns rather than fails). On the CPU
    two runs with the same seed give identical numbers.

    Parameters
    ----------
    seed : int
        Any non-negative integer.

    Returns
    -------
    torch.Generator
        A CPU generator seeded with ``seed``, for code that wants its own
        stream (data loaders, samplers).
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    # cuBLAS needs this for deterministic matmuls; harmless elsewhere.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The folder where cohorts, caches and checkpoints live.

    Parameters
    ----------
    path : path-like, optional
        Taken as given when set. Otherwise the environment variable
        ``NEUROHASH_DATA``, and failing that ``~/neurohash_data`` (as nilearn
        keeps ``~/nilearn_data``).

    Returns
    -------
    pathlib.Path
        The folder, created if missing.
    """
    if path is None:
        path = os.environ.get("NEUROHASH_DATA") or Path.home() / "neurohash_data"
    folder = Path(path).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# --------------------------------------------------------------------------
# Environment report
# --------------------------------------------------------------------------
REPORTED_PACKAGES = (
    "neurohash-lite", "torch", "numpy", "nibabel", "nilearn", "scikit-learn",
    "matplotlib", "ipywidgets", "faiss-cpu", "papermill", "jupyter-book",
)


@dataclass(frozen=True)
class EnvironmentReport:
    """What a chapter ran on. ``print(report)`` shows it as a small table."""

    python: str
    platform: str
    device: str
    cuda: str
    gpu: str
    mixed_precision: str
    cpu_threads: int
    packages: dict

    def __str__(self) -> str:
        rows = [
            ("python", self.python),
            ("platform", self.platform),
            ("device", self.device),
            ("CUDA", self.cuda),
            ("GPU", self.gpu),
            ("mixed precision", self.mixed_precision),
            ("CPU threads (torch)", str(self.cpu_threads)),
        ] + [(name, version) for name, version in self.packages.items()]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment_report(device: str | torch.device | None = None) -> EnvironmentReport:
    """Python, torch, CUDA, GPU and package versions, for a chapter to print once.

    Parameters
    ----------
    device : torch.device or str, optional
        The device the chapter uses (from :func:`select_device`); when omitted
        the report names what ``"auto"`` would pick, without warning.

    Returns
    -------
    EnvironmentReport
    """
    if device is None:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if torch.cuda.is_available():
        cuda = f"{torch.version.cuda} (available)"
        gpu = torch.cuda.get_device_name(device if device.type == "cuda" else 0)
    else:
        cuda = "not available"
        gpu = "none"
    if device.type == "cuda":
        precision = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    else:
        precision = "off (float32 on the CPU)"
    return EnvironmentReport(
        python=sys.version.split()[0],
        platform=platform.platform(),
        device=str(device),
        cuda=cuda,
        gpu=gpu,
        mixed_precision=precision,
        cpu_threads=torch.get_num_threads(),
        packages={name: _package_version(name) for name in REPORTED_PACKAGES},
    )


def run_summary(tier: Tier, device: str | torch.device, seed: int) -> str:
    """One line saying where and at which size a chapter runs (Chapter 0 prints the full report).

    Examples
    --------
    >>> run_summary(resolve_tier("smoke"), "cpu", 0)  # doctest: +ELLIPSIS
    'tier smoke (tiny cohort, 2D 3 × 32 × 32 slices, K in 16, 2 epochs) on cpu (...), seed 0'
    """
    device = torch.device(device)
    if tier.spatial_dims == 2:
        inputs = f"2D {tier.n_slices} × {tier.image_size} × {tier.image_size} slices"
    else:
        inputs = f"3D at {tier.voxel_size_mm:g} mm"
    if device.type == "cuda":
        where = f"{torch.cuda.get_device_name(device)} ({'bfloat16' if torch.cuda.is_bf16_supported() else 'float16'})"
    elif torch.cuda.is_available():
        where = "cpu (a GPU is present but not used)"
    else:
        where = "cpu (no GPU: fine at smoke and book, slow at paper)"
    bits = ", ".join(map(str, tier.bits))
    return (f"tier {tier.name} ({tier.preset} cohort, {inputs}, K in {bits}, {tier.epochs} epochs) on {where}, "
            f"seed {seed}")

