"""The hashing networks: an AlexNet-style branch per modality, 2D or 3D.

Tao & An (2021, Section 3.2) use two modality-specific branches "inspired by
AlexNet": five convolutional layers and three fully connected ones, the last
of which is a hash layer of K units squashed into (-1, 1) by tanh. The same
layout serves both tiers of the book:

- ``spatial_dims=2``: a scan is a stack of axial slices taken as input
  channels, e.g. (3, 64, 64);
- ``spatial_dims=3``: a scan is a volume with one channel, e.g.
  (1, 40, 48, 40) at 4 mm.

The layers are AlexNet's (Krizhevsky et al., 2012) with a smaller first
kernel and stride (brain images at 4-8 mm are 30-60 voxels across, not 224),
an adaptive average pooling before the fully connected layers so that any
input size works, and batch normalisation after every convolution and hidden
FC layer. The last is not decoration: without it the ReLU features of
different scans share a large common component, the hash layer maps every
scan near one code, and the quantization and push terms drive all codes to
it (in the overfit check of ``tests/test_models.py`` the codes of all
subjects collapsed to a single code per modality within 20 steps). ``width`` scales every channel
count and hidden size. A training batch needs two scans or more (batch
normalisation); in ``eval()`` mode any batch size works.

=========  ===========================================  ===================
layer      2D (3D alike, with 3D kernels)               channels at width 1
=========  ===========================================  ===================
conv1      5x5, stride 2, BN, ReLU, max-pool 3/2         64
conv2      3x3, BN, ReLU, max-pool 3/2                   192
conv3      3x3, BN, ReLU                                 384
conv4      3x3, BN, ReLU                                 256
conv5      3x3, BN, ReLU, max-pool 3/2                   256
pool       adaptive average to 4x4 (3D: 3x3x3)
fc6        linear, BN, ReLU, dropout                     4096
fc7        linear, BN, ReLU, dropout (the feature ``f``) 4096
hash       linear to K, tanh (the relaxed code ``u``)    K
=========  ===========================================  ===================
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["AlexNetHashBranch", "CrossModalHashNet"]

#: Channels of AlexNet's five convolutions and width of its two hidden FC layers.
ALEXNET_CHANNELS = (64, 192, 384, 256, 256)
ALEXNET_HIDDEN = 4096


def _scaled(value: int, width: float) -> int:
    return max(1, int(round(value * width)))


class AlexNetHashBranch(nn.Module):
    """One modality's network: 5 conv + 3 FC layers ending in a tanh hash layer.

    Parameters
    ----------
    in_channels : int
        Input channels: the number of stacked axial slices in 2D (e.g. 3), 1
        for a 3D volume.
    n_bits : int
        Code length K, the number of units of the hash layer.
    spatial_dims : {2, 3}, default 2
        2 for (C, H, W) slice stacks, 3 for (C, D, H, W) volumes.
    width : float, default 1.0
        Multiplier of every channel count and hidden size (0.5 halves them).
        The ``book`` tier uses 0.5 on 64x64 slices.
    dropout : float, default 0.5
        Dropout probability after fc6 and fc7 (AlexNet's 0.5).
    pooled_size : int, optional
        Side of the adaptive average pooling before fc6; default 4 in 2D and
        3 in 3D.
    hidden_dim : int, optional
        Units of fc6 and fc7; default ``round(4096 * width)``.

    Attributes
    ----------
    feature_dim : int
        Size of the feature ``f`` returned by :meth:`features` (fc7's units).
    hash_layer : nn.Linear
        The last layer, ``feature_dim -> n_bits`` (before tanh).

    Shapes
    ------
    input ``x``: float (N, in_channels, H, W) in 2D or (N, in_channels, D, H, W)
    in 3D, any spatial size (the book uses 32-64 pixels per side in 2D and
    27-48 voxels at 4-6 mm in 3D). ``features(x)``: (N, feature_dim).
    ``forward(x)``: (N, n_bits), values in (-1, 1).

    References
    ----------
    Tao & An (2021), Section 3.2 (five conv and three FC layers, a K-unit hash
    layer with tanh); Krizhevsky et al. (2012) for the AlexNet layout.

    Examples
    --------
    >>> branch = AlexNetHashBranch(in_channels=3, n_bits=16, width=0.5)
    >>> branch(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 16])
    """

    def __init__(
        self,
        in_channels: int,
        n_bits: int,
        spatial_dims: int = 2,
        width: float = 1.0,
        dropout: float = 0.5,
        pooled_size: int | None = None,
        hidden_dim: int | None = None,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
        if int(in_channels) != in_channels or in_channels < 1:
            raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}")
        if int(n_bits) != n_bits or n_bits < 1:
            raise ValueError(f"n_bits must be a positive integer, got {n_bits!r}")
        if not width > 0:
            raise ValueError(f"width must be positive, got {width!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        pooled_size = (4 if spatial_dims == 2 else 3) if pooled_size is None else int(pooled_size)
        if pooled_size < 1:
            raise ValueError(f"pooled_size must be a positive integer, got {pooled_size!r}")
        hidden_dim = _scaled(ALEXNET_HIDDEN, width) if hidden_dim is None else int(hidden_dim)
        if hidden_dim < 1:
            raise ValueError(f"hidden_dim must be a positive integer, got {hidden_dim!r}")

        self.in_channels = int(in_channels)
        self.n_bits = int(n_bits)
        self.spatial_dims = spatial_dims
        self.width = float(width)
        self.feature_dim = hidden_dim

        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        norm = nn.BatchNorm2d if spatial_dims == 2 else nn.BatchNorm3d
        pool = nn.MaxPool2d if spatial_dims == 2 else nn.MaxPool3d
        adaptive = nn.AdaptiveAvgPool2d if spatial_dims == 2 else nn.AdaptiveAvgPool3d
        c1, c2, c3, c4, c5 = (_scaled(c, width) for c in ALEXNET_CHANNELS)

        def block(c_in, c_out, kernel, stride=1):
            return [
                conv(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
                norm(c_out),
                nn.ReLU(inplace=True),
            ]

        self.convolutions = nn.Sequential(
            *block(self.in_channels, c1, 5, stride=2),    # conv1
            pool(3, stride=2, padding=1),
            *block(c1, c2, 3),                            # conv2
            pool(3, stride=2, padding=1),
            *block(c2, c3, 3),                            # conv3
            *block(c3, c4, 3),                            # conv4
            *block(c4, c5, 3),                            # conv5
            pool(3, stride=2, padding=1),
            adaptive(pooled_size),
        )
        flat = c5 * pooled_size**spatial_dims
        self.fully_connected = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, hidden_dim, bias=False),      # fc6
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, hidden_dim, bias=False),  # fc7
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )
        self.hash_layer = nn.Linear(hidden_dim, self.n_bits)  # fc8: K units

    def _check_input(self, x: torch.Tensor, name: str = "x") -> None:
        expected = self.spatial_dims + 2
        if not isinstance(x, torch.Tensor) or x.ndim != expected:
            layout = "(N, C, H, W)" if self.spatial_dims == 2 else "(N, C, D, H, W)"
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{name} must be a {expected}-D tensor {layout}, got {shape}")
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"{name} has {x.shape[1]} channels but the branch was built for in_channels={self.in_channels}"
            )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature before the hash layer (fc7's output).

        Parameters
        ----------
        x : torch.Tensor, float, (N, C, H, W) or (N, C, D, H, W)

        Returns
        -------
        torch.Tensor, float, shape (N, feature_dim), non-negative (after ReLU)
        """
        self._check_input(x)
        if self.training and x.shape[0] < 2:
            raise ValueError(
                "x holds one scan, but a training batch needs at least two (batch "
                "normalisation); drop the last incomplete batch or call model.eval()"
            )
        return self.fully_connected(self.convolutions(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The relaxed code ``u = tanh(W f + c)``.

        Parameters
        ----------
        x : torch.Tensor, float, (N, C, H, W) or (N, C, D, H, W)

        Returns
        -------
        torch.Tensor, float, shape (N, n_bits), values in (-1, 1)
        """
        return torch.tanh(self.hash_layer(self.features(x)))

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, n_bits={self.n_bits}, "
            f"spatial_dims={self.spatial_dims}, width={self.width}, feature_dim={self.feature_dim}"
        )


class CrossModalHashNet(nn.Module):
    """Two modality-specific branches, one for sMRI and one for PET.

    Parameters
    ----------
    n_bits : int
        Code length K of both branches.
    in_channels : int or (int, int), default 3
        Input channels of the sMRI and PET branches (one int for both).
    spatial_dims : {2, 3}, default 2
    width : float, default 1.0
    dropout : float, default 0.5
    pooled_size : int, optional
    hidden_dim : int, optional
        As in :class:`AlexNetHashBranch`.

    Attributes
    ----------
    mri_branch, pet_branch : AlexNetHashBranch
        Call one alone to encode a single modality (``u_x = model.mri_branch(mri)``).

    Shapes
    ------
    ``forward(mri, pet)``: ``mri`` (N_x, C_x, H, W) and ``pet`` (N_y, C_y, H, W)
    in 2D, or (N, C, D, H, W) in 3D; returns ``(u_x, u_y)`` of shapes
    (N_x, n_bits) and (N_y, n_bits), values in (-1, 1). The two batches may
    differ in size and in spatial size.

    References
    ----------
    Tao & An (2021), Section 3.2 and Fig. 2 (one branch per modality).

    Examples
    --------
    >>> model = CrossModalHashNet(n_bits=16, in_channels=3, width=0.25)
    >>> u_x, u_y = model(torch.zeros(4, 3, 32, 32), torch.zeros(4, 3, 32, 32))
    >>> u_x.shape, u_y.shape
    (torch.Size([4, 16]), torch.Size([4, 16]))
    """

    def __init__(
        self,
        n_bits: int,
        in_channels: int | Sequence[int] = 3,
        spatial_dims: int = 2,
        width: float = 1.0,
        dropout: float = 0.5,
        pooled_size: int | None = None,
        hidden_dim: int | None = None,
    ) -> None:
        super().__init__()
        if isinstance(in_channels, Sequence):
            if len(in_channels) != 2:
                raise ValueError(
                    f"in_channels must be an int or a pair (mri, pet), got {in_channels!r}"
                )
            mri_channels, pet_channels = in_channels
        else:
            mri_channels = pet_channels = in_channels
        options = dict(
            n_bits=n_bits, spatial_dims=spatial_dims, width=width, dropout=dropout,
            pooled_size=pooled_size, hidden_dim=hidden_dim,
        )
        self.n_bits = int(n_bits)
        self.mri_branch = AlexNetHashBranch(mri_channels, **options)
        self.pet_branch = AlexNetHashBranch(pet_channels, **options)

    def forward(self, mri: torch.Tensor, pet: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Relaxed codes of both modalities.

        Parameters
        ----------
        mri : torch.Tensor, float, (N_x, C_x, ...) sMRI scans
        pet : torch.Tensor, float, (N_y, C_y, ...) PET scans

        Returns
        -------
        u_x : torch.Tensor, shape (N_x, n_bits), values in (-1, 1)
        u_y : torch.Tensor, shape (N_y, n_bits), values in (-1, 1)
        """
        self.mri_branch._check_input(mri, "mri")
        self.pet_branch._check_input(pet, "pet")
        return self.mri_branch(mri), self.pet_branch(pet)

    def encode(self, x: torch.Tensor, modality: str) -> torch.Tensor:
        """Relaxed codes of one modality: what the shared training path calls.

        Parameters
        ----------
        x : torch.Tensor, float, (N, C, ...) scans of one modality
        modality : {"mri", "pet"}

        Returns
        -------
        torch.Tensor, shape (N, n_bits), values in (-1, 1)
        """
        if modality not in ("mri", "pet"):
            raise ValueError(f"modality={modality!r} must be 'mri' or 'pet'")
        branch = self.mri_branch if modality == "mri" else self.pet_branch
        branch._check_input(x, modality)
        return branch(x)
