"""A synthetic archive of codes at scale, grown from a network's real outputs.

No cohort holds a million scans, but the cost of a search depends on how
the codes are spread in the Hamming space: how many distinct codes there
are, how full the buckets of a hash table get. :func:`sample_archive`
grows an archive of any size whose codes follow those of a trained
network: each archive item picks a real scan uniformly at random (so the
labels keep the cohort's class proportions), takes that scan's real-valued
network output u ∈ (-1, 1)^K, adds Gaussian noise and binarises,

    u' = u + σ ε,   ε ~ N(0, I),   b' = sign(u').

Bit j of the new code differs from the real code's with probability
Φ(-|u_j| / σ), small for confident outputs (|u_j| near 1), so the archive
keeps the real codes' correlated bits and their crowding into few distinct
codes, and a bit's share of +1 per class moves from the real codes' by at
most that flip probability. The archive is synthetic: every code in it is a
noisy copy of one of the cohort's scans.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

__all__ = ["Archive", "sample_archive", "expected_bit_means", "network_outputs", "load_trained_outputs"]

# Archive items made per block, so that no float array of the full size is made
# unless the outputs are asked for.
_BLOCK = 1 << 16


@dataclass(frozen=True)
class Archive:
    """A sampled archive.

    Attributes
    ----------
    codes : numpy.ndarray, shape (n, K), int8
        ±1 codes, sign(u + σ ε).
    labels : numpy.ndarray, shape (n,), int64
        The label of each item's source scan.
    source : numpy.ndarray, shape (n,), int64
        The row of ``outputs`` each item was sampled around.
    outputs : numpy.ndarray, shape (n, K), float32, or None
        The noisy real-valued outputs u + σ ε (when asked for): what the
        float route (an inner-product index) would store.
    """

    codes: np.ndarray
    labels: np.ndarray
    source: np.ndarray
    outputs: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)


def _check_inputs(outputs, labels) -> tuple[np.ndarray, np.ndarray]:
    u = np.asarray(outputs, dtype=np.float32)
    if u.ndim != 2 or 0 in u.shape:
        raise ValueError(f"outputs must be a non-empty (n, K) array; got shape {u.shape}")
    if not np.isfinite(u).all():
        raise ValueError("outputs holds NaN or infinite values")
    labels = np.asarray(labels)
    if labels.shape != (len(u),):
        raise ValueError(f"labels must have shape ({len(u)},), one per row of outputs; got {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers; got dtype {labels.dtype}")
    return u, labels.astype(np.int64)


def sample_archive(outputs, labels, n: int, noise: float = 0.25, seed: int = 0,
                   return_outputs: bool = False) -> Archive:
    """Sample an archive of ``n`` codes around real network outputs.

    Parameters
    ----------
    outputs : array_like, shape (n_real, K), float
        Real-valued network outputs before the sign (e.g. the tanh of the hash
        layer), or ±1 codes themselves (then every bit flips with
        probability Φ(-1/σ)).
    labels : array_like, shape (n_real,), int
        Their labels.
    n : int
        Archive size, ≥ 1.
    noise : float
        σ > 0, the standard deviation of the Gaussian noise added to ``outputs``.
    seed : int
        Seed of the random generator; the archive is fully determined by it.
    return_outputs : bool
        Also return the noisy float outputs (n × K × 4 bytes).

    Returns
    -------
    Archive
        Codes, labels, source rows and (optionally) float outputs.

    Raises
    ------
    ValueError
        If ``outputs`` is not a finite non-empty 2-D array, ``labels`` does
        not match it, ``n`` < 1 or ``noise`` ≤ 0.
    """
    u, labels = _check_inputs(outputs, labels)
    if int(n) != n or n < 1:
        raise ValueError(f"n={n!r} must be a positive integer")
    if not np.isfinite(noise) or noise <= 0:
        raise ValueError(f"noise={noise!r} must be a positive number")
    n = int(n)
    rng = np.random.default_rng(seed)
    source = rng.integers(0, len(u), n)
    codes = np.empty((n, u.shape[1]), dtype=np.int8)
    floats = np.empty((n, u.shape[1]), dtype=np.float32) if return_outputs else None
    for start in range(0, n, _BLOCK):
        stop = min(n, start + _BLOCK)
        noisy = u[source[start:stop]] + np.float32(noise) * rng.standard_normal((stop - start, u.shape[1]),
                                                                                 dtype=np.float32)
        codes[start:stop] = np.where(noisy >= 0, np.int8(1), np.int8(-1))
        if floats is not None:
            floats[start:stop] = noisy
    return Archive(codes=codes, labels=labels[source], source=source, outputs=floats)


def expected_bit_means(outputs, labels, noise: float) -> dict[int, np.ndarray]:
    """Per class, each bit's expected share of +1 in an archive from :func:`sample_archive`.

    Mean over the class's scans of P(u_j + σ ε ≥ 0) = Φ(u_j / σ).

    Returns
    -------
    dict
        label → numpy.ndarray of shape (K,), in [0, 1].
    """
    u, labels = _check_inputs(outputs, labels)
    if not np.isfinite(noise) or noise <= 0:
        raise ValueError(f"noise={noise!r} must be a positive number")
    share = ndtr(u / noise)
    return {int(c): share[labels == c].mean(axis=0) for c in np.unique(labels)}


def network_outputs(model, dataset, modality: str, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Real-valued outputs u (before the sign) of one modality of a dataset.

    Parameters
    ----------
    model : torch.nn.Module
        Has ``encode(x, modality) -> u``, shape (n, K), in (-1, 1).
    dataset : torch.utils.data.Dataset
        Paired, yielding ``(mri, pet, label)``.
    modality : {"mri", "pet"}

    Returns
    -------
    outputs : numpy.ndarray, shape (n, K), float32
    labels : numpy.ndarray, shape (n,), int64
    """
    import torch
    from torch.utils.data import DataLoader

    if modality not in ("mri", "pet"):
        raise ValueError(f"modality={modality!r} must be 'mri' or 'pet'")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    outputs, labels = [], []
    with torch.no_grad():
        for mri, pet, label in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            images = mri if modality == "mri" else pet
            outputs.append(model.encode(images.to(device), modality).float().cpu().numpy())
            labels.append(np.asarray(label))
    model.train(was_training)
    return np.concatenate(outputs), np.concatenate(labels).astype(np.int64)


def load_trained_outputs(n_bits: int, scale: str = "book", seed: int = 0) -> dict | None:
    """Chapter 4's saved Method A network at K = n_bits: its outputs on every paired subject.

    Returns
    -------
    dict or None
        ``{"mri": (n, K) float32, "pet": (n, K) float32, "labels": (n,) int64,
        "origin": str}``, or None when no such checkpoint was saved in the
        data folder (run Chapter 4 at that tier first).
    """
    from neurohash_lite import runtime
    from neurohash_lite.data import PairedDataset, load_tier_cohort
    from neurohash_lite.models import CrossModalHashNet
    from neurohash_lite.train import load_checkpoint

    tier = runtime.resolve_tier(scale)
    path = runtime.data_dir() / "checkpoints" / f"ahs-{tier.name}-K{n_bits}-seed{seed}.pt"
    if not path.is_file():
        return None
    cohort = load_tier_cohort(tier, seed=seed)
    in_channels = cohort.mri.shape[1]
    model = CrossModalHashNet(n_bits, in_channels=in_channels, spatial_dims=tier.spatial_dims, width=tier.width)
    try:
        _, metadata = load_checkpoint(path, model)
    except ValueError:          # unreadable checkpoint: treated as missing
        return None
    if metadata.get("width") != tier.width or metadata.get("in_channels") != in_channels:
        return None
    dataset = PairedDataset.from_cohort(cohort)
    mri, labels = network_outputs(model, dataset, "mri")
    pet, _ = network_outputs(model, dataset, "pet")
    return {"mri": mri, "pet": pet, "labels": labels, "origin": path.name}
