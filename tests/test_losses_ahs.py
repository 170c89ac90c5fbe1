"""The Adaptive Hash Semantics loss: every term against a hand computation.

The hand computations below use Python loops over scalars (math.log1p,
math.exp), never the vectorised code they check.
"""

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from neurohash_lite.losses import (
    AHSLoss,
    ahs_balance_loss,
    ahs_likelihood_loss,
    ahs_pair_weights,
    ahs_push_loss,
    ahs_quantization_loss,
    ahs_shared_code,
    ahs_similarity,
    ahs_theta,
    ahs_triplet_loss,
)

# Three tiny paired subjects, K = 4 bits, labels 0, 0, 1.
U_X = [[0.5, -0.2, 0.9, -0.7], [0.1, 0.3, -0.4, 0.8], [-0.6, -0.9, 0.2, 0.4]]
U_Y = [[0.4, -0.1, 0.7, 0.2], [-0.3, 0.6, -0.8, 0.5], [-0.2, -0.5, 0.1, -0.9]]
LABELS = [0, 0, 1]


def tiny(dtype=torch.float64, requires_grad=False):
    u_x = torch.tensor(U_X, dtype=dtype, requires_grad=requires_grad)
    u_y = torch.tensor(U_Y, dtype=dtype, requires_grad=requires_grad)
    return u_x, u_y


def softplus_by_hand(t):
    # log(1 + e^t) written stably for the scalar check
    return max(t, 0.0) + math.log1p(math.exp(-abs(t)))


# --------------------------------------------------------------------------
# Similarity, Theta, weights
# --------------------------------------------------------------------------
def test_similarity_matrix_by_hand():
    s = ahs_similarity([0, 1, 2], [1, 1, 0, 2])
    expected = [[0, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 1]]
    assert s.tolist() == expected


def test_theta_by_hand_and_binary_identity():
    u_x, u_y = tiny()
    theta = ahs_theta(u_x, u_y)
    for i, j in itertools.product(range(3), range(3)):
        by_hand = sum(U_X[i][k] * U_Y[j][k] for k in range(4)) / 4
        assert theta[i, j].item() == pytest.approx(by_hand, abs=1e-12)
    # binary codes: Theta = 1 - 2 d_H / K
    rng = np.random.default_rng(0)
    b = torch.tensor(rng.choice([-1.0, 1.0], size=(5, 8)))
    c = torch.tensor(rng.choice([-1.0, 1.0], size=(6, 8)))
    d_hamming = (b[:, None, :] != c[None, :, :]).sum(-1).double()
    assert torch.allclose(ahs_theta(b, c), 1 - 2 * d_hamming / 8)


def test_pair_weights_by_hand():
    s = torch.tensor([[1, 0, 0], [0, 1, 0]])  # |S| = 6, |S1| = 2, |S0| = 4
    w = ahs_pair_weights(s)
    assert w.dtype == torch.get_default_dtype()
    expected = [[3.0, 1.5, 1.5], [1.5, 3.0, 1.5]]
    assert w.tolist() == expected


@settings(max_examples=50, deadline=None)
@given(
    st.integers(1, 7),
    st.integers(1, 7),
    st.integers(0, 2**31 - 1),
)
def test_pair_weights_balance_similar_and_dissimilar(n_x, n_y, seed):
    rng = np.random.default_rng(seed)
    s = torch.tensor(rng.integers(0, 2, size=(n_x, n_y)), dtype=torch.float64)
    w = ahs_pair_weights(s)
    n_pairs = n_x * n_y
    n_similar = int(s.sum())
    total_similar = w[s == 1].sum().item()
    total_dissimilar = w[s == 0].sum().item()
    if 0 < n_similar < n_pairs:
        # each side carries |S|, so the weights sum to 2 |S|
        assert total_similar == pytest.approx(n_pairs)
        assert total_dissimilar == pytest.approx(n_pairs)
        assert w.sum().item() == pytest.approx(2 * n_pairs)
    else:
        # one side is empty: every weight is 1
        assert torch.all(w == 1)


def test_pair_weights_reject_non_binary():
    with pytest.raises(ValueError, match="s must hold only 0 and 1"):
        ahs_pair_weights(torch.tensor([[0.5, 1.0]]))
    with pytest.raises(ValueError, match="s must be a non-empty matrix"):
        ahs_pair_weights(torch.tensor([1.0, 0.0]))


# --------------------------------------------------------------------------
# Likelihood
# --------------------------------------------------------------------------
def likelihood_by_hand(u_x, u_y, labels_x, labels_y, a):
    n_x, n_y, n_bits = len(u_x), len(u_y), len(u_x[0])
    s = [[1.0 if labels_x[i] == labels_y[j] else 0.0 for j in range(n_y)] for i in range(n_x)]
    n_pairs = n_x * n_y
    n_similar = sum(map(sum, s))
    n_dissimilar = n_pairs - n_similar
    total = 0.0
    for i in range(n_x):
        for j in range(n_y):
            theta = sum(u_x[i][k] * u_y[j][k] for k in range(n_bits)) / n_bits
            if s[i][j] == 1:
                w = n_pairs / n_similar
                nll = -math.log(1 / (1 + math.exp(-a * theta)))
            else:
                w = n_pairs / n_dissimilar if n_dissimilar else 1.0
                nll = -math.log(1 - 1 / (1 + math.exp(-a * theta)))
            total += w * nll
    return total / n_pairs


@pytest.mark.parametrize("a", [1.0, 2.0, 10.0])
def test_likelihood_by_hand(a):
    u_x, u_y = tiny()
    s = ahs_similarity(LABELS, LABELS)
    value = ahs_likelihood_loss(u_x, u_y, s, a)
    assert value.item() == pytest.approx(likelihood_by_hand(U_X, U_Y, LABELS, LABELS, a), rel=1e-12)


def test_likelihood_is_weighted_binary_cross_entropy():
    torch.manual_seed(0)
    u_x, u_y = torch.randn(6, 8).tanh(), torch.randn(5, 8).tanh()
    s = ahs_similarity([0, 1, 2, 0, 1, 2], [0, 0, 1, 2, 2])
    logits = 7.0 * u_x @ u_y.T / 8
    reference = F.binary_cross_entropy_with_logits(logits, s, weight=ahs_pair_weights(s))
    assert torch.allclose(ahs_likelihood_loss(u_x, u_y, s, 7.0), reference, atol=1e-6)


def test_likelihood_rejects_bad_arguments():
    u_x, u_y = tiny()
    with pytest.raises(ValueError, match="s must have shape"):
        ahs_likelihood_loss(u_x, u_y, torch.ones(2, 3), 10.0)
    with pytest.raises(ValueError, match="a must be positive"):
        ahs_likelihood_loss(u_x, u_y, torch.ones(3, 3), 0.0)
    with pytest.raises(ValueError, match="same code length"):
        ahs_likelihood_loss(u_x, u_y[:, :3], torch.ones(3, 3), 1.0)
    with pytest.raises(ValueError, match="u_x must have shape"):
        ahs_likelihood_loss(u_x[0], u_y, torch.ones(3, 3), 1.0)


def test_larger_a_lowers_the_likelihood_on_separable_pairs():
    # codes that separate the pairs: similar Theta > 0, dissimilar Theta < 0
    code = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, 1.0, -1.0, -1.0])
    u_x = torch.stack([0.8 * code, 0.7 * code, -0.9 * code])
    u_y = torch.stack([0.6 * code, 0.9 * code, -0.5 * code])
    s = ahs_similarity([0, 0, 1], [0, 0, 1])
    theta = ahs_theta(u_x, u_y)
    assert torch.all((theta > 0) == (s == 1))
    values = [ahs_likelihood_loss(u_x, u_y, s, a).item() for a in np.linspace(1, 64, 40)]
    assert all(later < earlier for earlier, later in zip(values, values[1:]))


# --------------------------------------------------------------------------
# Quantization
# --------------------------------------------------------------------------
def test_quantization_by_hand():
    u_x, u_y = tiny()
    n, n_bits = 3, 4
    total = 0.0
    for i in range(n):
        for k in range(n_bits):
            b = 1.0 if U_X[i][k] + U_Y[i][k] >= 0 else -1.0
            total += (U_X[i][k] - b) ** 2 + (U_Y[i][k] - b) ** 2
    assert ahs_quantization_loss(u_x, u_y).item() == pytest.approx(total / (n * n_bits), rel=1e-12)


def test_shared_code_minimises_the_distance_and_ties_go_to_plus_one():
    u_x = torch.tensor([[0.3, -0.3, 0.9, -0.1]])
    u_y = torch.tensor([[-0.3, 0.3, -0.2, -0.4]])
    b = ahs_shared_code(u_x, u_y)
    assert b.tolist() == [[1.0, 1.0, 1.0, -1.0]]

    def cost(c):
        return (((u_x - c) ** 2).sum() + ((u_y - c) ** 2).sum()).item()

    # brute force over all 16 codes
    codes = [torch.tensor([code]) for code in itertools.product([-1.0, 1.0], repeat=4)]
    assert cost(b) == pytest.approx(min(cost(c) for c in codes))


def test_quantization_is_zero_on_shared_binary_codes_and_not_otherwise():
    rng = np.random.default_rng(1)
    b = torch.tensor(rng.choice([-1.0, 1.0], size=(4, 16)))
    assert ahs_quantization_loss(b, b.clone()).item() == 0.0
    c = b.clone()
    c[0, 0] *= -1  # one subject's PET code differs from its MRI code in one bit
    # B = sign(0) = +1 there: one of the two entries is off by 2 -> 4 / (n K)
    assert ahs_quantization_loss(b, c).item() == pytest.approx(4 / (4 * 16))


def test_quantization_needs_paired_rows():
    with pytest.raises(ValueError, match="paired rows"):
        ahs_quantization_loss(torch.zeros(3, 4), torch.zeros(2, 4))


# --------------------------------------------------------------------------
# Triplet, push, balance
# --------------------------------------------------------------------------
def triplet_by_hand(u_x, u_y, labels_x, labels_y, margin):
    p_x = [[(v + 1) / 2 for v in row] for row in u_x]
    p_y = [[(v + 1) / 2 for v in row] for row in u_y]

    def dist(p, q):
        return sum((pi - qi) ** 2 for pi, qi in zip(p, q))

    hinges = []
    for anchors, others, la, lo in ((p_x, p_y, labels_x, labels_y), (p_y, p_x, labels_y, labels_x)):
        for i, anchor in enumerate(anchors):
            for j, positive in enumerate(others):
                for k, negative in enumerate(others):
                    if lo[j] == la[i] and lo[k] != la[i]:
                        hinges.append(max(0.0, dist(anchor, positive) - dist(anchor, negative) + margin))
    return sum(hinges) / len(hinges) if hinges else 0.0


@pytest.mark.parametrize("margin", [0.0, 0.5, 1.0, None])
def test_triplet_by_hand(margin):
    u_x, u_y = tiny()
    value = ahs_triplet_loss(u_x, u_y, LABELS, LABELS, margin)
    expected = triplet_by_hand(U_X, U_Y, LABELS, LABELS, 4 / 4 if margin is None else margin)
    assert value.item() == pytest.approx(expected, rel=1e-12)


def test_triplet_by_hand_unpaired_batches():
    torch.manual_seed(3)
    u_x, u_y = torch.randn(4, 6, dtype=torch.float64).tanh(), torch.randn(5, 6, dtype=torch.float64).tanh()
    labels_x, labels_y = [0, 1, 2, 1], [2, 1, 1, 0, 0]
    value = ahs_triplet_loss(u_x, u_y, labels_x, labels_y, 1.5)
    expected = triplet_by_hand(u_x.tolist(), u_y.tolist(), labels_x, labels_y, 1.5)
    assert value.item() == pytest.approx(expected, rel=1e-12)


def test_triplet_is_zero_when_positives_are_closer_by_the_margin():
    # class 0 near +c, class 1 near -c: every positive is 8 bits closer than every negative
    code = torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0, -1.0, 1.0, -1.0])
    u_x = torch.stack([code, code, -code, -code])
    u_y = torch.stack([code, code, -code, -code])
    labels = [0, 0, 1, 1]
    assert ahs_triplet_loss(u_x, u_y, labels, labels, margin=8.0).item() == 0.0
    # a margin larger than the gap makes it positive: 9 - 8 = 1 bit per triplet
    assert ahs_triplet_loss(u_x, u_y, labels, labels, margin=9.0).item() == pytest.approx(1.0)


def test_triplet_distance_is_hamming_on_binary_codes():
    rng = np.random.default_rng(2)
    b = torch.tensor(rng.choice([-1.0, 1.0], size=(6, 12)))
    c = torch.tensor(rng.choice([-1.0, 1.0], size=(6, 12)))
    p, q = (b + 1) / 2, (c + 1) / 2
    squared = ((p[:, None, :] - q[None, :, :]) ** 2).sum(-1)
    hamming = (12 - b @ c.T) / 2
    assert torch.equal(squared, hamming)


def test_triplet_without_valid_triplets_is_zero_with_a_zero_gradient():
    u_x = torch.randn(3, 8, requires_grad=True)
    u_y = torch.randn(3, 8, requires_grad=True)
    value = ahs_triplet_loss(u_x, u_y, [1, 1, 1], [1, 1, 1], 2.0)  # no negatives
    assert value.item() == 0.0
    value.backward()
    assert torch.all(u_x.grad == 0) and torch.all(u_y.grad == 0)


def test_triplet_rejects_bad_arguments():
    u_x, u_y = tiny()
    with pytest.raises(ValueError, match="labels_x must have shape"):
        ahs_triplet_loss(u_x, u_y, [0, 1], LABELS, 1.0)
    with pytest.raises(ValueError, match="labels_y must hold integer"):
        ahs_triplet_loss(u_x, u_y, LABELS, [0.0, 1.0, 1.0], 1.0)
    with pytest.raises(ValueError, match="margin"):
        ahs_triplet_loss(u_x, u_y, LABELS, LABELS, -1.0)


def test_push_and_balance_by_hand():
    u_x, _ = tiny()
    p = [[(v + 1) / 2 for v in row] for row in U_X]
    push = sum((v - 0.5) ** 2 for row in p for v in row) / 12
    balance = sum((sum(row) / 4 - 0.5) ** 2 for row in p) / 3
    assert ahs_push_loss(u_x).item() == pytest.approx(push, rel=1e-12)
    assert ahs_balance_loss(u_x).item() == pytest.approx(balance, rel=1e-12)


def test_push_and_balance_on_binary_codes():
    balanced = torch.tensor([[1.0, -1.0, 1.0, -1.0], [-1.0, -1.0, 1.0, 1.0]])
    assert ahs_push_loss(balanced).item() == 0.25
    assert ahs_balance_loss(balanced).item() == 0.0
    all_ones = torch.ones(2, 4)
    assert ahs_balance_loss(all_ones).item() == 0.25
    assert ahs_push_loss(torch.zeros(2, 4)).item() == 0.0


# --------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------
def test_gradcheck_every_term():
    u_x, u_y = tiny(requires_grad=True)
    s = ahs_similarity(LABELS, LABELS).double()
    a = torch.tensor(7.0, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda ux, uy, a_: ahs_likelihood_loss(ux, uy, s, a_), (u_x, u_y, a))
    assert torch.autograd.gradcheck(ahs_quantization_loss, (u_x, u_y))
    assert torch.autograd.gradcheck(lambda ux, uy: ahs_triplet_loss(ux, uy, LABELS, LABELS, 1.0), (u_x, u_y))
    assert torch.autograd.gradcheck(ahs_push_loss, (u_x,))
    assert torch.autograd.gradcheck(ahs_balance_loss, (u_x,))


def test_gradcheck_total_including_rho():
    u_x, u_y = tiny(requires_grad=True)
    loss = AHSLoss(n_bits=4, a_init=3.0, a_max=100.0, margin=1.0).double()
    rho = loss.rho.detach().clone().requires_grad_(True)

    def total(ux, uy, rho_):
        return torch.func.functional_call(loss, {"rho": rho_}, (ux, uy, LABELS))[0]

    assert torch.autograd.gradcheck(total, (u_x, u_y, rho))


def test_total_rho_gradient_matches_finite_differences():
    u_x, u_y = tiny()
    loss = AHSLoss(n_bits=4, a_init=5.0, a_max=100.0).double()
    value, _ = loss(u_x, u_y, LABELS)
    value.backward()
    analytic = loss.rho.grad.item()
    eps = 1e-6
    with torch.no_grad():
        rho0 = loss.rho.item()
        loss.rho.fill_(rho0 + eps)
        plus = loss(u_x, u_y, LABELS)[0].item()
        loss.rho.fill_(rho0 - eps)
        minus = loss(u_x, u_y, LABELS)[0].item()
    assert analytic == pytest.approx((plus - minus) / (2 * eps), rel=1e-6)


# --------------------------------------------------------------------------
# Extreme inputs
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("a", [1.0 + 1e-6, 10.0, 1e4])
@pytest.mark.parametrize(
    "labels",
    [[0, 0, 1, 1], [2, 2, 2, 2], [0, 1, 2, 1], [1]],
    ids=["two-classes", "no-negatives", "three-classes", "batch-of-one"],
)
def test_finite_at_extreme_inputs(dtype, a, labels):
    n = len(labels)
    code = torch.tensor([1.0, -1.0, 1.0, -1.0, -1.0, 1.0, 1.0, -1.0], dtype=dtype)
    sign = torch.tensor([1.0 if v == labels[0] else -1.0 for v in labels], dtype=dtype)
    # codes at exactly +-1, agreeing or opposite: |Theta| = 1, so |a Theta| = a
    for u_x0, u_y0 in ((sign[:, None] * code, sign[:, None] * code), (sign[:, None] * code, -sign[:, None] * code)):
        u_x = u_x0.clone().requires_grad_(True)
        u_y = u_y0.clone().requires_grad_(True)
        loss = AHSLoss(n_bits=8, a_init=a, a_max=1e5).to(dtype)
        total, parts = loss(u_x, u_y, labels)
        total.backward()
        assert torch.isfinite(total)
        assert all(torch.isfinite(v) for v in parts.values())
        assert torch.isfinite(u_x.grad).all() and torch.isfinite(u_y.grad).all()
        assert torch.isfinite(loss.rho.grad)


def test_likelihood_with_huge_logits_matches_its_limit():
    # a Theta = +-1e4: log(1 + exp) would overflow; softplus gives the exact limit
    u = torch.ones(1, 4)
    loss_wrong = ahs_likelihood_loss(u, -u, torch.ones(1, 1), 1e4)  # similar pair, Theta = -1
    loss_right = ahs_likelihood_loss(u, u, torch.ones(1, 1), 1e4)  # similar pair, Theta = +1
    assert loss_wrong.item() == pytest.approx(1e4)
    assert loss_right.item() == pytest.approx(0.0, abs=1e-30)


# --------------------------------------------------------------------------
# The total and the learnable a
# --------------------------------------------------------------------------
def test_total_is_the_weighted_sum_of_its_parts():
    u_x, u_y = tiny()
    loss = AHSLoss(n_bits=4, lambda_q=0.3, alpha=0.2, margin=1.0).double()
    total, parts = loss(u_x, u_y, LABELS)
    assert set(parts) == {"likelihood", "quantization", "metric", "push", "balance", "a"}
    assert parts["a"].item() == pytest.approx(4.0)  # a_init 10 clamped to a_max = K = 4
    both = torch.cat([u_x, u_y])
    assert parts["likelihood"].item() == pytest.approx(likelihood_by_hand(U_X, U_Y, LABELS, LABELS, 4.0))
    assert parts["quantization"].item() == pytest.approx(ahs_quantization_loss(u_x, u_y).item())
    assert parts["metric"].item() == pytest.approx(triplet_by_hand(U_X, U_Y, LABELS, LABELS, 1.0))
    assert parts["push"].item() == pytest.approx(ahs_push_loss(both).item())
    assert parts["balance"].item() == pytest.approx(ahs_balance_loss(both).item())
    expected = (
        parts["likelihood"]
        + 0.3 * parts["quantization"]
        + 0.2 * (parts["metric"] - parts["push"] + parts["balance"])
    )
    assert total.item() == pytest.approx(expected.item(), rel=1e-12)


def test_a_starts_at_ten_and_is_clamped():
    assert AHSLoss(n_bits=64).a.item() == pytest.approx(10.0, rel=1e-6)
    assert AHSLoss(n_bits=8).a.item() == 8.0  # a_max = K = 8 < 10
    fixed = AHSLoss(n_bits=64, a_init=32.0, learn_a=False)
    assert fixed.a.item() == pytest.approx(32.0)
    assert len(list(fixed.parameters())) == 0
    assert len(list(AHSLoss(n_bits=64).parameters())) == 1


def test_learnable_a_runs_to_its_bound_on_a_separable_batch():
    torch.manual_seed(0)
    n_bits = 16
    centre = torch.sign(torch.randn(n_bits))
    centres = torch.stack([centre, -centre])
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    u_x = (0.8 * centres[labels] + 0.1 * torch.randn(6, n_bits)).clamp(-0.99, 0.99)
    u_y = (0.8 * centres[labels] + 0.1 * torch.randn(6, n_bits)).clamp(-0.99, 0.99)
    s = ahs_similarity(labels, labels)
    assert torch.all((ahs_theta(u_x, u_y) > 0) == (s == 1))  # separable
    loss = AHSLoss(n_bits=n_bits)  # a_max = 16
    optimiser = torch.optim.Adam(loss.parameters(), lr=0.1)
    trajectory = []
    for _ in range(200):
        optimiser.zero_grad()
        total, parts = loss(u_x, u_y, labels)
        total.backward()
        optimiser.step()
        trajectory.append(parts["a"].item())
    assert trajectory[0] == pytest.approx(10.0, rel=1e-5)
    assert loss.a.item() == pytest.approx(16.0)


def test_fit_trains_rho_at_its_own_rate():
    """Through the shared training path rho moves at ``parameter_lr``, the
    network's weights at the configuration's rate."""
    from torch.utils.data import TensorDataset

    from neurohash_lite.train import CrossModalObjective, TrainConfig, fit

    class Linear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mri, self.pet = torch.nn.Linear(6, 8), torch.nn.Linear(6, 8)

        def encode(self, x, modality):
            return torch.tanh(getattr(self, modality)(x))

    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(32) % 3
    data = TensorDataset(torch.randn(32, 6, generator=generator), torch.randn(32, 6, generator=generator), labels)
    objective = CrossModalObjective(AHSLoss(n_bits=8, a_init=5.0))
    assert objective.parameter_lr == 0.1
    rho_start = float(objective.loss.rho.detach())
    config = TrainConfig(epochs=2, batch_size=8, lr=1e-4, device="cpu", progress=False, patience=None)
    fit(Linear(), objective, data, config)
    steps = 2 * 4
    moved = abs(float(objective.loss.rho.detach()) - rho_start)
    assert moved > 10 * steps * config.lr
    assert moved <= steps * 0.1 * 1.01


def test_loss_rejects_bad_configuration():
    with pytest.raises(ValueError, match="n_bits"):
        AHSLoss(n_bits=0)
    with pytest.raises(ValueError, match="a_init"):
        AHSLoss(n_bits=16, a_init=1.0)
    with pytest.raises(ValueError, match="a_max"):
        AHSLoss(n_bits=16, a_max=0.5)
    with pytest.raises(ValueError, match="alpha"):
        AHSLoss(n_bits=16, alpha=-1.0)
    with pytest.raises(ValueError, match="parameter_lr"):
        AHSLoss(n_bits=16, parameter_lr=0.0)


def test_loss_in_half_precision_is_computed_in_float32():
    u_x, u_y = tiny(dtype=torch.bfloat16)
    total, parts = AHSLoss(n_bits=4)(u_x, u_y, LABELS)
    assert total.dtype == torch.float32
    reference, _ = AHSLoss(n_bits=4)(u_x.float(), u_y.float(), LABELS)
    assert total.item() == pytest.approx(reference.item(), rel=1e-6)
