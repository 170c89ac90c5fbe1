"""The hashing networks: shapes in 2D and 3D, width, and a short overfit."""

import pytest
import torch
from torch import nn

from neurohash_lite.losses import AHSLoss
from neurohash_lite.models import AlexNetHashBranch, CrossModalHashNet


def conv_channels(branch):
    return [m.out_channels for m in branch.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))]


@pytest.mark.parametrize(
    "spatial_dims, in_channels, size",
    [
        (2, 3, (32, 32)),
        (2, 3, (64, 64)),
        (2, 5, (48, 40)),
        (3, 1, (40, 48, 40)),  # 4 mm
        (3, 1, (27, 32, 27)),  # 6 mm
        (3, 1, (20, 24, 20)),  # 8 mm
    ],
)
@pytest.mark.parametrize("n_bits", [16, 64])
def test_branch_output_shapes(spatial_dims, in_channels, size, n_bits):
    branch = AlexNetHashBranch(in_channels, n_bits, spatial_dims=spatial_dims, width=0.25)
    branch.eval()
    x = torch.randn(2, in_channels, *size)
    with torch.no_grad():
        u = branch(x)
        f = branch.features(x)
    assert u.shape == (2, n_bits)
    assert f.shape == (2, branch.feature_dim)
    assert torch.all(u.abs() < 1)
    assert torch.all(f >= 0)
    assert len(conv_channels(branch)) == 5
    n_linear = sum(isinstance(m, nn.Linear) for m in branch.modules())
    assert n_linear == 3


@pytest.mark.parametrize("width", [0.25, 0.5, 1.0])
def test_width_scales_every_layer(width):
    branch = AlexNetHashBranch(3, 32, width=width)
    assert conv_channels(branch) == [round(c * width) for c in (64, 192, 384, 256, 256)]
    assert branch.feature_dim == round(4096 * width)
    assert branch.hash_layer.in_features == branch.feature_dim
    assert branch.hash_layer.out_features == 32


def test_features_then_hash_layer_is_the_forward():
    torch.manual_seed(0)
    branch = AlexNetHashBranch(3, 16, width=0.25).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(branch(x), torch.tanh(branch.hash_layer(branch.features(x))))


def test_hidden_dim_and_pooled_size_options():
    branch = AlexNetHashBranch(1, 8, spatial_dims=3, width=0.25, hidden_dim=100, pooled_size=2)
    assert branch.feature_dim == 100
    assert branch.fully_connected[1].in_features == 64 * 2**3  # conv5 at width 0.25: 64 channels
    with torch.no_grad():
        assert branch.eval()(torch.randn(1, 1, 24, 24, 24)).shape == (1, 8)


def test_cross_modal_net_shapes_and_separate_branches():
    model = CrossModalHashNet(n_bits=32, in_channels=(3, 2), width=0.25).eval()
    with torch.no_grad():
        u_x, u_y = model(torch.randn(4, 3, 32, 32), torch.randn(6, 2, 64, 64))
    assert u_x.shape == (4, 32) and u_y.shape == (6, 32)
    # one branch per modality: no shared parameter
    mri_params = {id(p) for p in model.mri_branch.parameters()}
    assert not mri_params & {id(p) for p in model.pet_branch.parameters()}


def test_cross_modal_net_3d():
    model = CrossModalHashNet(n_bits=16, in_channels=1, spatial_dims=3, width=0.25).eval()
    with torch.no_grad():
        u_x, u_y = model(torch.randn(2, 1, 27, 32, 27), torch.randn(2, 1, 27, 32, 27))
    assert u_x.shape == u_y.shape == (2, 16)


def test_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="spatial_dims"):
        AlexNetHashBranch(3, 16, spatial_dims=1)
    with pytest.raises(ValueError, match="width"):
        AlexNetHashBranch(3, 16, width=0)
    with pytest.raises(ValueError, match="n_bits"):
        AlexNetHashBranch(3, 0)
    with pytest.raises(ValueError, match="in_channels"):
        CrossModalHashNet(16, in_channels=(1, 2, 3))
    model = CrossModalHashNet(16, in_channels=3, width=0.25)
    with pytest.raises(ValueError, match="pet must be a 4-D tensor"):
        model(torch.randn(2, 3, 32, 32), torch.randn(2, 3, 8, 32, 32))
    with pytest.raises(ValueError, match="mri has 1 channels"):
        model(torch.randn(2, 1, 32, 32), torch.randn(2, 3, 32, 32))
    with pytest.raises(ValueError, match="at least two"):
        model.train()(torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32))


def test_overfit_eight_subjects_separates_two_classes():
    """20 steps of Adam on the full AHS loss memorise 8 random subjects."""
    torch.manual_seed(0)
    n_bits = 16
    mri = torch.randn(8, 3, 32, 32)
    pet = torch.randn(8, 3, 32, 32)
    labels = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1])
    model = CrossModalHashNet(n_bits=n_bits, in_channels=3, width=0.25, dropout=0.0)
    loss_fn = AHSLoss(n_bits)
    optimiser = torch.optim.Adam([*model.parameters(), *loss_fn.parameters()], lr=1e-3)
    history = []
    for _ in range(20):
        optimiser.zero_grad()
        u_x, u_y = model(mri, pet)
        total, _ = loss_fn(u_x, u_y, labels)
        total.backward()
        optimiser.step()
        history.append(total.item())
    assert history[-1] < 0.25 * history[0]

    # Refresh the batch-norm running statistics on the final weights, then encode
    # as retrieval does: eval mode, sign(u).
    with torch.no_grad():
        for _ in range(30):
            model(mri, pet)
        model.eval()
        u_x, u_y = model(mri, pet)
    b_x = torch.where(u_x >= 0, 1.0, -1.0)
    b_y = torch.where(u_y >= 0, 1.0, -1.0)
    hamming = (n_bits - b_x @ b_y.T) / 2
    same = labels[:, None] == labels[None, :]
    # every cross-modal pair of one class is closer than every pair across classes
    assert hamming[same].max() < hamming[~same].min()
