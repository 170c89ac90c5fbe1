"""The small inputs the loss tests share, worked by hand once here.

Two subjects, K = 2, labels 0 and 1::

    u_x = [[1, 0], [0, 1]]      u_y = [[1, 1], [0, -1]]

so ½ u_x u_yᵀ = [[0.5, 0], [0.5, -0.5]] and ½ u_y u_xᵀ = [[0.5, 0.5], [0, -0.5]],
with s = I (similar on the diagonal only). Both directions hold the same four
inner products, and the mean over the four pairs of softplus(θ) − s θ is
:data:`LIKELIHOOD`.
"""

from __future__ import annotations

import math

import torch


def softplus(value: float) -> float:
    """log(1 + e^value), in plain Python, for hand computations."""
    return math.log1p(math.exp(value))


U_X = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
U_Y = torch.tensor([[1.0, 1.0], [0.0, -1.0]], dtype=torch.float64)
LABELS = torch.tensor([0, 1])
LIKELIHOOD = (softplus(0.5) - 0.5 + softplus(0.0) + softplus(0.5) + softplus(-0.5) + 0.5) / 4


def random_codes(n: int = 5, k: int = 6, seed: int = 0, low: float = -0.9, high: float = 0.9):
    """Relaxed codes of both modalities, uniform in (low, high), float64, with gradients.

    Returns
    -------
    u_x, u_y : torch.Tensor, shape (n, k)
    labels : torch.Tensor, shape (n,)
        The diagnoses 0, 1, 2, 0, 1 (cut to n), so every batch has similar and
        dissimilar pairs.
    """
    generator = torch.Generator().manual_seed(seed)
    u_x = (torch.rand(n, k, generator=generator, dtype=torch.float64) * (high - low) + low).requires_grad_()
    u_y = (torch.rand(n, k, generator=generator, dtype=torch.float64) * (high - low) + low).requires_grad_()
    return u_x, u_y, torch.tensor([0, 1, 2, 0, 1][:n])
