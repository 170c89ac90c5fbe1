"""The baselines' losses: values by hand on tiny inputs, gradients in float64."""

from __future__ import annotations

import itertools
import math

import pytest
import scipy.linalg
import torch

from neurohash_lite.losses import (
    ContinuationHashNet,
    CSQLoss,
    DCMHLoss,
    DPSHLoss,
    HashNetLoss,
    TripletHashingLoss,
    csq_hash_centres,
    hashnet_stages,
)
from neurohash_lite.losses.dhn import DHNLoss
from neurohash_lite.losses.dsh import DSHLoss
from neurohash_lite.losses.idhn import IDHNLoss
from neurohash_lite.losses.lcdsh import LCDSHLoss
from neurohash_lite.losses.dpn import DPNLoss
from neurohash_lite.dscmr import DSCMRLoss
from neurohash_lite.losses.pgdh import PGDHLoss
from neurohash_lite.losses.cmhh import CMHHLoss
from neurohash_lite.models import CrossModalHashNet
from pair_fixtures import LABELS, LIKELIHOOD, U_X, U_Y, random_codes, softplus


# --------------------------------------------------------------------------
# DCMH
# --------------------------------------------------------------------------
def test_dcmh_by_hand():
    total, parts = DCMHLoss(2, gamma=1.0, eta=1.0)(U_X, U_Y, LABELS)
    assert parts["likelihood"].item() == pytest.approx(LIKELIHOOD, abs=1e-12)
    # B = sign(u_x + u_y) = sign([[2, 1], [0, 0]]) = all +1;
    # ||u_x - B||^2 = 2, ||u_y - B||^2 = 5, over n K = 4
    assert parts["quantization"].item() == pytest.approx(7 / 4)
    # column means: u_x (0.5, 0.5) -> 0.25; u_y (0.5, 0) -> 0.125
    assert parts["balance"].item() == pytest.approx(0.375)
    assert total.item() == pytest.approx(LIKELIHOOD + 1.75 + 0.375)


def test_dcmh_weights_scale_their_terms():
    total, parts = DCMHLoss(2, gamma=0.5, eta=2.0)(U_X, U_Y, LABELS)
    assert total.item() == pytest.approx(LIKELIHOOD + 0.5 * 1.75 + 2.0 * 0.375)


# --------------------------------------------------------------------------
# DPSH
# --------------------------------------------------------------------------
def test_dpsh_by_hand():
    total, parts = DPSHLoss(2, eta=0.1)(U_X, U_Y, LABELS)
    assert parts["likelihood"].item() == pytest.approx(LIKELIHOOD, abs=1e-12)
    # own signs (sign(0) = +1): u_x -> mean of [[0, 1], [1, 0]] = 0.5;
    # u_y -> sign [[1, 1], [1, -1]], mean of [[0, 0], [1, 0]] = 0.25
    assert parts["quantization"].item() == pytest.approx((0.5 + 0.25) / 2)
    assert total.item() == pytest.approx(LIKELIHOOD + 0.1 * 0.375)


# --------------------------------------------------------------------------
# HashNet
# --------------------------------------------------------------------------
def test_hashnet_by_hand():
    # alpha = 1/2 gives the logits above; two similar and two dissimilar pairs: w = 4/2 = 2
    total, parts = HashNetLoss(2, alpha=0.5)(U_X, U_Y, LABELS)
    assert total.item() == pytest.approx(2 * LIKELIHOOD, abs=1e-12)


def test_hashnet_weights_balance_an_unbalanced_batch():
    # labels (0, 0, 1) on both sides: 5 similar, 4 dissimilar pairs of 9
    u = torch.tensor([[1.0], [1.0], [-1.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1])
    total, _ = HashNetLoss(1, alpha=1.0)(u, u, labels)
    # every logit is +1 for a similar pair and -1 for a dissimilar one
    expected = (5 * 9 / 5 * (softplus(1.0) - 1.0) + 4 * 9 / 4 * softplus(-1.0)) / 9
    assert total.item() == pytest.approx(expected)


def test_hashnet_default_alpha_is_ten_over_k():
    assert HashNetLoss(32).alpha == pytest.approx(10 / 32)


def test_continuation_encodes_tanh_of_beta_z():
    torch.manual_seed(0)
    network = CrossModalHashNet(8, in_channels=3, width=0.25).eval()
    x = torch.randn(3, 3, 32, 32)
    wrapper = ContinuationHashNet(network, beta=1.0).eval()
    assert torch.allclose(wrapper.encode(x, "mri"), network.encode(x, "mri"))
    wrapper.beta = 4.0
    branch = network.pet_branch
    z = branch.hash_layer(branch.features(x))
    assert torch.allclose(wrapper.encode(x, "pet"), torch.tanh(4.0 * z))
    # the binary code does not depend on beta
    assert torch.equal(torch.sign(wrapper.encode(x, "pet")), torch.sign(z))
    with pytest.raises(ValueError, match="beta"):
        wrapper.beta = 0.0


def test_hashnet_stages_split_the_budget():
    assert hashnet_stages(10) == [(3, 1.0), (3, 2.0), (2, 4.0), (2, 8.0)]
    assert hashnet_stages(2) == [(1, 1.0), (1, 2.0)]
    for epochs in range(1, 30):
        assert sum(e for e, _ in hashnet_stages(epochs)) == epochs
    with pytest.raises(ValueError, match="epochs"):
        hashnet_stages(0)


# --------------------------------------------------------------------------
# CSQ
# --------------------------------------------------------------------------
def test_csq_centres_from_hadamard():
    centres = csq_hash_centres(8, 4)
    hadamard = torch.tensor(scipy.linalg.hadamard(4), dtype=torch.float32)
    assert torch.equal(centres, torch.cat([hadamard, -hadamard]))
    # distinct rows of H_K are K/2 bits apart
    for i, j in itertools.combinations(range(4), 2):
        assert (centres[i] != centres[j]).sum().item() == 2
    with pytest.raises(ValueError, match="at most 8"):
        csq_hash_centres(9, 4)
    odd = csq_hash_centres(3, 6, seed=1)
    assert odd.shape == (3, 6) and set(odd.unique().tolist()) <= {-1.0, 1.0}


def test_csq_by_hand():
    # K = 2: centres rows of [H_2; -H_2] = (1, 1), (1, -1), (-1, -1); label 1 -> (1, -1), c' = (1, 0)
    u_x = torch.tensor([[0.5, 0.0]], dtype=torch.float64)   # h' = (0.75, 0.5)
    u_y = torch.tensor([[0.0, -0.5]], dtype=torch.float64)  # h' = (0.5, 0.25)
    total, parts = CSQLoss(2, lambda_q=0.01)(u_x, u_y, torch.tensor([1]))
    central_x = -(math.log(0.75) + math.log(0.5)) / 2
    central_y = -(math.log(0.5) + math.log(1 - 0.25)) / 2
    assert parts["central"].item() == pytest.approx((central_x + central_y) / 2)
    q = (math.log(math.cosh(-0.5)) + math.log(math.cosh(-1.0))) / 2  # the same for both
    assert parts["quantization"].item() == pytest.approx(q)
    assert total.item() == pytest.approx((central_x + central_y) / 2 + 0.01 * q)


def test_csq_rejects_labels_outside_the_centres():
    with pytest.raises(ValueError, match="labels_x"):
        CSQLoss(4, n_classes=3)(torch.zeros(1, 4), torch.zeros(1, 4), torch.tensor([3]))


# --------------------------------------------------------------------------
# Triplet-only
# --------------------------------------------------------------------------
def brute_force_triplet(u_x, u_y, labels, margin):
    p_x, p_y = (u_x + 1) / 2, (u_y + 1) / 2
    hinges = []
    for anchors, others in ((p_x, p_y), (p_y, p_x)):
        for a, pos, neg in itertools.product(range(len(labels)), repeat=3):
            if labels[a] == labels[pos] and labels[a] != labels[neg]:
                d_pos = ((anchors[a] - others[pos]) ** 2).sum()
                d_neg = ((anchors[a] - others[neg]) ** 2).sum()
                hinges.append(max(0.0, float(d_pos - d_neg) + margin))
    return sum(hinges) / len(hinges)


def test_triplet_by_hand():
    # p_x = [[1, 1], [0, 0]], p_y = [[1, 0.5], [0, 1]]; margin 1 bit.
    # x0: pos y0 d = 0.25, neg y1 d = 1 -> 0.25; x1: pos y1 d = 1, neg y0 d = 1.25 -> 0.75
    # y0: pos x0 d = 0.25, neg x1 d = 1.25 -> 0;  y1: pos x1 d = 1, neg x0 d = 1 -> 1
    u_x = torch.tensor([[1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    u_y = torch.tensor([[1.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)
    total, parts = TripletHashingLoss(2, margin=1.0)(u_x, u_y, LABELS)
    assert total.item() == pytest.approx((0.25 + 0.75 + 0 + 1) / 4)
    assert total.item() == pytest.approx(brute_force_triplet(u_x, u_y, LABELS, 1.0))


def test_triplet_matches_brute_force_on_random_codes():
    u_x, u_y, labels = random_codes()
    total, _ = TripletHashingLoss(6)(u_x, u_y, labels)
    assert total.item() == pytest.approx(brute_force_triplet(u_x.detach(), u_y.detach(), labels, 1.5))


# --------------------------------------------------------------------------
# Gradients and the common signature
# --------------------------------------------------------------------------
LOSSES = {
    "triplet": lambda k: TripletHashingLoss(k),
    "dcmh": lambda k: DCMHLoss(k),
    "dpsh": lambda k: DPSHLoss(k),
    "hashnet": lambda k: HashNetLoss(k),
    "csq": lambda k: CSQLoss(k, n_classes=3, lambda_q=0.1),
    "dhn": lambda k: DHNLoss(k),
    "dsh": lambda k: DSHLoss(k),
    "lcdsh": lambda k: LCDSHLoss(k),
    "idhn": lambda k: IDHNLoss(k),
    "dpn": lambda k: DPNLoss(k, n_classes=3, margin=1.0),
    "dscmr": lambda k: DSCMRLoss(k),
    "pgdh": lambda k: PGDHLoss(k),
    "cmhh": lambda k: CMHHLoss(k),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradcheck_float64(name):
    u_x, u_y, labels = random_codes(k=8)
    loss = LOSSES[name](8).double()
    assert torch.autograd.gradcheck(lambda a, b: loss(a, b, labels)[0], (u_x, u_y))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_signature_and_parts(name):
    u_x, u_y, labels = random_codes(k=8)
    total, parts = LOSSES[name](8)(u_x.float(), u_y.float(), labels)
    assert total.ndim == 0 and torch.isfinite(total)
    assert parts and all(not value.requires_grad for value in parts.values())
    with pytest.raises(ValueError, match="code length"):
        LOSSES[name](8)(u_x.float(), u_y.float()[:, :4], labels)
    with pytest.raises(ValueError, match="labels_x"):
        LOSSES[name](8)(u_x.float(), u_y.float(), labels[:2])


def test_csq_central_loss_equals_binary_cross_entropy():
    u = torch.rand(4, 8, dtype=torch.float64) * 2 - 1
    centres = csq_hash_centres(3, 8).double()[torch.tensor([0, 1, 2, 0])]
    from neurohash_lite.losses import csq_central_loss
    expected = torch.nn.functional.binary_cross_entropy((u + 1) / 2, (centres + 1) / 2)
    assert csq_central_loss(u, centres).item() == pytest.approx(expected.item())
    # codes at +-1 stay finite: at most -log(1e-7) per bit
    assert torch.isfinite(csq_central_loss(-centres, centres))
    assert csq_central_loss(-centres, centres).item() == pytest.approx(-math.log(1e-7), rel=1e-6)


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_saturated_codes_give_finite_gradients(name, dtype):
    # a tanh saturates to exactly +-1 in float32; every loss must still give a usable gradient
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    signs = csq_hash_centres(3, 8).to(dtype)[labels]
    for u_x, u_y in ((signs, signs), (signs, -signs), (signs, signs.roll(1, dims=0))):
        a, b = u_x.clone().requires_grad_(), u_y.clone().requires_grad_()
        total, _ = LOSSES[name](8).to(dtype)(a, b, labels)
        total.backward()
        assert torch.isfinite(total)
        assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all(), f"{name}: non-finite gradient"
