"""The DCPHA losses: every term against a hand computation, printed and corrected.

The hand computations use Python loops over scalars (math.exp, math.sqrt),
never the vectorised code they check. The two failures of the printed forms
(the regulariser collapses every code; S_H pulls different diagnoses
together) are reproduced by optimising free code tensors.
"""

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurohash_lite.losses import (
    dcpha_distance,
    dcpha_heterogeneous_similarity,
    dcpha_homogeneous_similarity,
    dcpha_j1,
    dcpha_j2,
    dcpha_laplacian_objective,
    dcpha_loss,
    dcpha_multimanifold_similarity,
    dcpha_regularizer,
    dcpha_same_label,
)

# Three tiny subjects, K = 4 bits, labels 0, 0, 1, in three modalities.
H_MRI = [[0.5, -0.2, 0.9, -0.7], [0.1, 0.3, -0.4, 0.8], [-0.6, -0.9, 0.2, 0.4]]
H_PET = [[0.4, -0.1, 0.7, 0.2], [-0.3, 0.6, -0.8, 0.5], [-0.2, -0.5, 0.1, -0.9]]
H_THIRD = [[0.2, 0.8, -0.3, 0.1], [0.7, -0.6, 0.5, -0.2], [-0.4, 0.3, 0.6, 0.9]]
LABELS = [0, 0, 1]


def tensor(values, requires_grad=False):
    return torch.tensor(values, dtype=torch.float64, requires_grad=requires_grad)


# --------------------------------------------------------------------------
# Hand computations
# --------------------------------------------------------------------------
def sq_dist(a, b):
    return sum((x - y) ** 2 for x, y in zip(a, b))


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a) + 1e-12) * math.sqrt(sum(y * y for y in b) + 1e-12))


def s_h_paper(a, b, same, tau=1.0):
    d = math.sqrt(sq_dist(a, b) + 1e-12)
    big_d2 = 1 - math.exp(-d) if same else math.exp(-d)
    return math.exp(-big_d2 / tau)


def s_h_corrected_block(codes_m, codes_n, labels_m, labels_n, tau=1.0, beta=None):
    if beta is None:
        all_sq = [sq_dist(a, b) for a in codes_m for b in codes_n]
        beta = max(sum(all_sq) / len(all_sq), 1e-8)
    block = []
    for a, la in zip(codes_m, labels_m):
        row = []
        for b, lb in zip(codes_n, labels_n):
            x = min(sq_dist(a, b) / beta, 20.0)
            big_d2 = 1 - math.exp(-x) if la == lb else (math.exp(x / 2) - 0.5) ** 2
            row.append(math.exp(-big_d2 / tau))
        block.append(row)
    return block


def s_h_block(codes_m, codes_n, labels, variant, tau=1.0):
    if variant == "paper":
        return [[s_h_paper(a, b, la == lb, tau) for b, lb in zip(codes_n, labels)] for a, la in zip(codes_m, labels)]
    return s_h_corrected_block(codes_m, codes_n, labels, labels, tau)


def s_m_by_hand(modalities, labels, variant, tau=1.0):
    n = len(labels)
    size = n * len(modalities)
    s = [[None] * size for _ in range(size)]
    for m, codes_m in enumerate(modalities):
        for q, codes_q in enumerate(modalities):
            if m == q:
                block = [[cosine(a, b) for b in codes_q] for a in codes_m]
            else:
                block = s_h_block(codes_m, codes_q, labels, variant, tau)
            for i in range(n):
                for j in range(n):
                    s[m * n + i][q * n + j] = block[i][j]
    return s


def softmax(row):
    top = max(row)
    e = [math.exp(v - top) for v in row]
    return [v / sum(e) for v in e]


def norm(v):
    return math.sqrt(sum(x * x for x in v) + 1e-12)


def j1_by_hand(y_logits, r_logits, labels):
    total = 0.0
    for y_row, r_row, label in zip(y_logits, r_logits, labels):
        y, r = softmax(y_row), softmax(r_row)
        one_hot = [1.0 if c == label else 0.0 for c in range(len(y_row))]
        total += norm([a - b for a, b in zip(y, one_hot)])
        total += norm([a - b for a, b in zip(r, one_hot)])
        total += norm([a - b for a, b in zip(y, r)])
    return total / len(labels)


def softplus_by_hand(t):
    return max(t, 0.0) + math.log1p(math.exp(-abs(t)))


def j2_by_hand(s, same, gamma=1.0):
    total, count = 0.0, 0
    for i in range(len(s)):
        for j in range(len(s)):
            if i != j:
                total += softplus_by_hand(gamma * s[i][j]) - same[i][j] * gamma * s[i][j]
                count += 1
    return total / count


# --------------------------------------------------------------------------
# Distances and S_I
# --------------------------------------------------------------------------
def test_distance_by_hand_and_finite_gradient_at_zero():
    d = dcpha_distance(tensor(H_MRI), tensor(H_PET))
    for i, j in itertools.product(range(3), range(3)):
        assert d[i, j].item() == pytest.approx(math.sqrt(sq_dist(H_MRI[i], H_PET[j]) + 1e-12), rel=1e-12)
    h = tensor(H_MRI, requires_grad=True)
    d_self = dcpha_distance(h, h)
    assert torch.allclose(torch.diagonal(d_self), torch.full((3,), 1e-6, dtype=torch.float64))
    d_self.sum().backward()
    assert torch.isfinite(h.grad).all()


def test_homogeneous_similarity_by_hand():
    s = dcpha_homogeneous_similarity(tensor(H_MRI))
    for i, j in itertools.product(range(3), range(3)):
        assert s[i, j].item() == pytest.approx(cosine(H_MRI[i], H_MRI[j]), abs=1e-12)
    cross = dcpha_homogeneous_similarity(tensor(H_MRI), tensor(H_PET[:2]))
    assert cross.shape == (3, 2)
    assert cross[2, 1].item() == pytest.approx(cosine(H_MRI[2], H_PET[1]), abs=1e-12)


def test_homogeneous_similarity_of_a_zero_code_is_zero_with_finite_gradient():
    h = torch.tensor([[0.0, 0.0, 0.0], [0.3, -0.2, 0.5]], dtype=torch.float64, requires_grad=True)
    s = dcpha_homogeneous_similarity(h)
    assert s[0].abs().max().item() == 0.0
    s.sum().backward()
    assert torch.isfinite(h.grad).all()


# --------------------------------------------------------------------------
# S_H, both variants
# --------------------------------------------------------------------------
@pytest.mark.parametrize("tau", [0.5, 1.0, 3.0])
def test_heterogeneous_similarity_paper_by_hand(tau):
    labels_pet = [0, 1, 1]
    s = dcpha_heterogeneous_similarity(tensor(H_MRI), tensor(H_PET), LABELS, labels_pet, tau=tau, variant="paper")
    for i, j in itertools.product(range(3), range(3)):
        by_hand = s_h_paper(H_MRI[i], H_PET[j], LABELS[i] == labels_pet[j], tau)
        assert s[i, j].item() == pytest.approx(by_hand, rel=1e-12)


@pytest.mark.parametrize("tau", [0.5, 1.0, 3.0])
def test_heterogeneous_similarity_corrected_by_hand(tau):
    labels_pet = [0, 1, 1]
    s = dcpha_heterogeneous_similarity(tensor(H_MRI), tensor(H_PET), LABELS, labels_pet, tau=tau)
    by_hand = s_h_corrected_block(H_MRI, H_PET, LABELS, labels_pet, tau)
    for i, j in itertools.product(range(3), range(3)):
        assert s[i, j].item() == pytest.approx(by_hand[i][j], rel=1e-12)
    # an explicit beta replaces the block mean
    fixed = dcpha_heterogeneous_similarity(tensor(H_MRI), tensor(H_PET), LABELS, labels_pet, tau=tau, beta=0.7)
    by_hand = s_h_corrected_block(H_MRI, H_PET, LABELS, labels_pet, tau, beta=0.7)
    assert torch.allclose(fixed, torch.tensor(by_hand, dtype=torch.float64), rtol=1e-12, atol=0)


def test_corrected_distance_is_clipped_so_far_pairs_stay_finite():
    h_m = torch.tensor([[0.0] * 4, [0.0] * 4], dtype=torch.float64, requires_grad=True)
    h_n = torch.tensor([[0.0] * 4, [1.0] * 4], dtype=torch.float64)  # d^2 = 0 or 4
    s = dcpha_heterogeneous_similarity(h_m, h_n, [0, 1], [0, 1], beta=1e-3)  # x = 4000, clipped at 20
    assert torch.isfinite(s).all()
    assert s[0, 0].item() == 1.0  # same label, d = 0
    # different labels at x = 20: D^2 = (e^10 - 0.5)^2, S_H underflows to 0
    assert s[0, 1].item() == 0.0
    # same label at x = 20: D^2 = 1 - e^-20
    assert s[1, 1].item() == pytest.approx(math.exp(-(1 - math.exp(-20.0))), rel=1e-12)
    s.sum().backward()
    assert torch.isfinite(h_m.grad).all()


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.2, 5.0))
def test_printed_s_h_grows_with_distance_for_different_labels(seed, tau):
    """Eq. (3) as printed: for l_i != l_j, S_H rises as the codes move apart;
    the corrected S_H falls. For l_i = l_j both fall."""
    rng = np.random.default_rng(seed)
    anchor = torch.tensor(rng.uniform(-1, 1, size=(1, 8)))
    direction = torch.tensor(rng.normal(size=(1, 8)))
    direction = direction / direction.norm()
    steps = torch.linspace(0.0, 1.5, 13, dtype=torch.float64)[:, None]
    others = anchor + steps * direction  # d = 0, 0.125, ..., 1.5 (x <= 2.25: no underflow)
    curves = {}
    for variant in ("paper", "corrected"):
        for same in (True, False):
            labels_others = [0] * len(others) if same else [1] * len(others)
            s = dcpha_heterogeneous_similarity(anchor, others, [0], labels_others, tau=tau, variant=variant, beta=1.0)
            curves[variant, same] = s[0]
    assert torch.all(torch.diff(curves["paper", False]) > 0)  # the printed inversion
    assert torch.all(torch.diff(curves["corrected", False]) < 0)
    assert torch.all(torch.diff(curves["paper", True]) < 0)
    assert torch.all(torch.diff(curves["corrected", True]) < 0)


def test_s_h_ranges():
    tau = 1.0
    zero = torch.zeros(1, 4, dtype=torch.float64)
    # at d = 0: same label 1 in both variants; different labels e^{-1} printed, e^{-0.25} corrected
    for variant in ("paper", "corrected"):
        assert dcpha_heterogeneous_similarity(zero, zero, [0], [0], variant=variant, beta=1.0).item() == pytest.approx(1.0)
    assert dcpha_heterogeneous_similarity(zero, zero, [0], [1], variant="paper").item() == pytest.approx(
        math.exp(-math.exp(-1e-6) / tau), rel=1e-12
    )
    assert dcpha_heterogeneous_similarity(zero, zero, [0], [1], beta=1.0).item() == pytest.approx(math.exp(-0.25))


# --------------------------------------------------------------------------
# S_M and the indicator
# --------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["paper", "corrected"])
def test_multimanifold_similarity_two_modalities_by_hand(variant):
    s = dcpha_multimanifold_similarity([tensor(H_MRI), tensor(H_PET)], LABELS, tau=0.8, variant=variant)
    by_hand = s_m_by_hand([H_MRI, H_PET], LABELS, variant, tau=0.8)
    assert s.shape == (6, 6)
    assert torch.allclose(s, torch.tensor(by_hand, dtype=torch.float64), rtol=1e-12, atol=1e-14)
    assert torch.allclose(s, s.T)


@pytest.mark.parametrize("variant", ["paper", "corrected"])
def test_multimanifold_similarity_three_modalities_by_hand(variant):
    modalities = [H_MRI, H_PET, H_THIRD]
    s = dcpha_multimanifold_similarity([tensor(h) for h in modalities], LABELS, variant=variant)
    by_hand = s_m_by_hand(modalities, LABELS, variant)
    assert s.shape == (9, 9)
    assert torch.allclose(s, torch.tensor(by_hand, dtype=torch.float64), rtol=1e-12, atol=1e-14)
    assert torch.allclose(s, s.T)
    # the diagonal blocks are cosines: ones on the main diagonal
    assert torch.allclose(torch.diagonal(s), torch.ones(9, dtype=torch.float64))


def test_same_label_by_hand():
    same = dcpha_same_label([0, 1, 0], n_modalities=2)
    labels = [0, 1, 0, 0, 1, 0]
    assert same.tolist() == [[1.0 if a == b else 0.0 for b in labels] for a in labels]
    assert dcpha_same_label([2, 2]).tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_similarity_functions_reject_bad_input():
    h = tensor(H_MRI)
    with pytest.raises(ValueError, match="variant"):
        dcpha_heterogeneous_similarity(h, h, LABELS, LABELS, variant="printed")
    with pytest.raises(ValueError, match="tau"):
        dcpha_heterogeneous_similarity(h, h, LABELS, LABELS, tau=0.0)
    with pytest.raises(ValueError, match="labels_n must have shape"):
        dcpha_heterogeneous_similarity(h, h, LABELS, [0, 1])
    with pytest.raises(ValueError, match="labels_m must hold integer"):
        dcpha_heterogeneous_similarity(h, h, [0.0, 1.0, 0.0], LABELS)
    with pytest.raises(ValueError, match="same code length"):
        dcpha_heterogeneous_similarity(h, h[:, :3], LABELS, LABELS)
    with pytest.raises(ValueError, match="same subjects"):
        dcpha_multimanifold_similarity([h, h[:2]], LABELS)
    with pytest.raises(ValueError, match="list of"):
        dcpha_multimanifold_similarity(h, LABELS)
    with pytest.raises(ValueError, match="empty"):
        dcpha_multimanifold_similarity([], LABELS)
    with pytest.raises(ValueError, match="n_modalities"):
        dcpha_same_label(LABELS, 0)


# --------------------------------------------------------------------------
# J1, J2, the regulariser, the Laplacian objective
# --------------------------------------------------------------------------
Y_LOGITS = [[2.0, -1.0, 0.5], [0.1, 0.2, 0.3], [-1.0, 3.0, 0.0], [0.0, 0.0, 4.0]]
R_LOGITS = [[1.0, 0.0, -0.5], [-2.0, 1.0, 0.3], [0.5, 0.5, 0.5], [1.0, -3.0, 2.0]]
J1_LABELS = [0, 2, 1, 2]


def test_j1_by_hand():
    value = dcpha_j1(tensor(Y_LOGITS), tensor(R_LOGITS), J1_LABELS)
    assert value.item() == pytest.approx(j1_by_hand(Y_LOGITS, R_LOGITS, J1_LABELS), rel=1e-12)


def test_j1_is_zero_only_for_confident_agreeing_predictions():
    logits = torch.tensor([[60.0, 0.0, 0.0], [0.0, 60.0, 0.0]], dtype=torch.float64, requires_grad=True)
    value = dcpha_j1(logits, logits, [0, 1])
    assert value.item() == pytest.approx(3e-6, abs=1e-6)  # three norms of sqrt(1e-12) each
    value.backward()
    assert torch.isfinite(logits.grad).all()
    # both predictions wrong but agreeing: sqrt(2) + sqrt(2) + the floor sqrt(1e-12) of the third norm
    assert dcpha_j1(logits, logits, [1, 0]).item() == pytest.approx(2 * math.sqrt(2) + 1e-6, abs=1e-9)


def test_j1_rejects_bad_input():
    y = tensor(Y_LOGITS)
    with pytest.raises(ValueError, match="same shape"):
        dcpha_j1(y, y[:, :2], J1_LABELS)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        dcpha_j1(y, y, [0, 1, 2, 3])
    with pytest.raises(ValueError, match="labels must have shape"):
        dcpha_j1(y, y, [0, 1])


@pytest.mark.parametrize("gamma", [1.0, 4.0])
def test_j2_by_hand_leaves_out_the_diagonal(gamma):
    s = s_m_by_hand([H_MRI, H_PET], LABELS, "corrected")
    same = dcpha_same_label(LABELS, 2).tolist()
    value = dcpha_j2(torch.tensor(s, dtype=torch.float64), same, gamma=gamma)
    assert value.item() == pytest.approx(j2_by_hand(s, same, gamma), rel=1e-12)
    # changing the diagonal changes nothing
    s_changed = torch.tensor(s, dtype=torch.float64)
    s_changed.fill_diagonal_(-7.0)
    assert dcpha_j2(s_changed, same, gamma=gamma).item() == pytest.approx(value.item(), rel=1e-12)


def test_j2_rejects_bad_input():
    s = torch.eye(3)
    with pytest.raises(ValueError, match="square"):
        dcpha_j2(torch.ones(2, 3), torch.ones(2, 3))
    with pytest.raises(ValueError, match="shape of s_m"):
        dcpha_j2(s, torch.ones(2, 2))
    with pytest.raises(ValueError, match="only 0 and 1"):
        dcpha_j2(s, torch.full((3, 3), 0.5))
    with pytest.raises(ValueError, match="gamma"):
        dcpha_j2(s, torch.ones(3, 3), gamma=-1.0)
    with pytest.raises(ValueError, match="at least 2"):
        dcpha_j2(torch.ones(1, 1), torch.ones(1, 1))


def test_regularizer_by_hand():
    h = H_MRI + H_PET
    entries = [v for row in h for v in row]
    paper = sum(abs(v - 1) for v in entries) / len(entries)
    corrected = sum(abs(abs(v) - 1) for v in entries) / len(entries)
    assert dcpha_regularizer(tensor(h), variant="paper").item() == pytest.approx(paper, rel=1e-12)
    assert dcpha_regularizer(tensor(h)).item() == pytest.approx(corrected, rel=1e-12)
    # binary codes: the corrected term is 0 for any bits, the printed one only for all +1
    bits = torch.tensor([[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0]])
    assert dcpha_regularizer(bits).item() == 0.0
    assert dcpha_regularizer(bits, variant="paper").item() == pytest.approx(2 * 3 / 6)
    assert dcpha_regularizer(torch.ones(2, 3), variant="paper").item() == 0.0


def test_regularizer_gradient_pushes_every_entry_up_as_printed():
    h = tensor([[-0.9, -0.1, 0.2, 0.8]], requires_grad=True)
    dcpha_regularizer(h, variant="paper").backward()
    assert torch.all(h.grad < 0)  # gradient descent raises every entry, negatives included
    h.grad = None
    dcpha_regularizer(h).backward()
    # corrected: entries move away from 0 towards their own sign
    assert torch.equal(torch.sign(-h.grad), torch.sign(h.detach()))


def test_laplacian_objective_by_hand():
    modalities = [H_MRI, H_PET]
    s = s_m_by_hand(modalities, LABELS, "corrected")
    rows = H_MRI + H_PET
    total, count = 0.0, 0
    for i in range(6):
        for j in range(6):
            if i != j:
                unit_i = [v / norm(rows[i]) for v in rows[i]]
                unit_j = [v / norm(rows[j]) for v in rows[j]]
                total += 0.5 * s[i][j] * sq_dist(unit_i, unit_j)
                count += 1
    value = dcpha_laplacian_objective([tensor(h) for h in modalities], torch.tensor(s, dtype=torch.float64))
    assert value.item() == pytest.approx(total / count, rel=1e-12)


def test_total_is_the_weighted_sum_of_its_parts():
    y = [tensor(Y_LOGITS[:3]), tensor(R_LOGITS[:3])]
    r = [tensor(R_LOGITS[1:]), tensor(Y_LOGITS[1:])]
    codes = [tensor(H_MRI), tensor(H_PET)]
    total, parts = dcpha_loss(y, r, codes, LABELS, alpha=0.3, beta=1.0, lambda_r=0.25, gamma=2.0, tau=0.5,
                              similarity="paper", regularizer="corrected")
    j1 = j1_by_hand(Y_LOGITS[:3] + R_LOGITS[:3], R_LOGITS[1:] + Y_LOGITS[1:], LABELS * 2)
    s = s_m_by_hand([H_MRI, H_PET], LABELS, "paper", tau=0.5)
    j2 = j2_by_hand(s, dcpha_same_label(LABELS, 2).tolist(), gamma=2.0)
    entries = [v for row in H_MRI + H_PET for v in row]
    reg = sum(abs(abs(v) - 1) for v in entries) / len(entries)
    assert parts["j1"].item() == pytest.approx(j1, rel=1e-12)
    assert parts["j2"].item() == pytest.approx(j2, rel=1e-12)
    assert parts["regularizer"].item() == pytest.approx(reg, rel=1e-12)
    assert total.item() == pytest.approx(0.3 * j1 + 1.0 * j2 + 0.25 * reg, rel=1e-12)
    assert not any(p.requires_grad for p in parts.values())


def test_total_rejects_bad_weights_and_lists():
    codes = [tensor(H_MRI), tensor(H_PET)]
    y = [tensor(Y_LOGITS[:3])] * 2
    with pytest.raises(ValueError, match="alpha"):
        dcpha_loss(y, y, codes, LABELS, alpha=-1.0)
    with pytest.raises(ValueError, match="regularizer"):
        dcpha_loss(y, y, codes, LABELS, regularizer="l1")
    with pytest.raises(ValueError, match="one tensor per modality"):
        dcpha_loss(y[:1], y, codes, LABELS)


# --------------------------------------------------------------------------
# Gradients: gradcheck in float64, and finiteness where things degenerate
# --------------------------------------------------------------------------
def test_gradcheck_every_term():
    h_m, h_n, h_t = tensor(H_MRI, True), tensor(H_PET, True), tensor(H_THIRD, True)
    gradcheck = torch.autograd.gradcheck
    assert gradcheck(dcpha_distance, (h_m, h_n))
    assert gradcheck(dcpha_homogeneous_similarity, (h_m,))
    for tau in (0.5, 2.0):
        assert gradcheck(lambda a, b: dcpha_heterogeneous_similarity(a, b, LABELS, [0, 1, 1], tau, "paper"), (h_m, h_n))
        # the corrected form with its scale held fixed (by default beta is detached)
        assert gradcheck(lambda a, b: dcpha_heterogeneous_similarity(a, b, LABELS, [0, 1, 1], tau, beta=0.9), (h_m, h_n))
    assert gradcheck(lambda a, b, c: dcpha_multimanifold_similarity([a, b, c], LABELS, variant="paper"), (h_m, h_n, h_t))
    y, r = tensor(Y_LOGITS, True), tensor(R_LOGITS, True)
    assert gradcheck(lambda a, b: dcpha_j1(a, b, J1_LABELS), (y, r))
    same = dcpha_same_label(LABELS, 2)
    s = tensor(s_m_by_hand([H_MRI, H_PET], LABELS, "corrected"), True)
    for gamma in (1.0, 5.0):
        assert gradcheck(lambda s_: dcpha_j2(s_, same, gamma), (s,))
    for variant in ("paper", "corrected"):
        assert gradcheck(lambda a: dcpha_regularizer(a, variant), (h_m,))
    assert gradcheck(lambda a, b: dcpha_laplacian_objective([a, b], s.detach()), (h_m, h_n))


def test_gradcheck_total():
    h_m, h_n = tensor(H_MRI, True), tensor(H_PET, True)
    y_m, y_p = tensor(Y_LOGITS[:3], True), tensor(Y_LOGITS[1:], True)
    r_m, r_p = tensor(R_LOGITS[:3], True), tensor(R_LOGITS[1:], True)

    def total(a, b, c, d, e, f):
        return dcpha_loss([a, b], [c, d], [e, f], LABELS, gamma=3.0, similarity="paper", regularizer="paper")[0]

    assert torch.autograd.gradcheck(total, (y_m, y_p, r_m, r_p, h_m, h_n))


def test_corrected_gradient_treats_beta_as_a_constant():
    """By default beta is the block mean of d^2, detached: the gradient equals
    that of the same function with beta given as a number."""
    h_m, h_n = tensor(H_MRI, True), tensor(H_PET, True)
    beta = sum(sq_dist(a, b) for a in H_MRI for b in H_PET) / 9
    auto = torch.autograd.grad(dcpha_heterogeneous_similarity(h_m, h_n, LABELS, LABELS).sum(), (h_m, h_n))
    fixed = torch.autograd.grad(dcpha_heterogeneous_similarity(h_m, h_n, LABELS, LABELS, beta=beta).sum(), (h_m, h_n))
    for a, b in zip(auto, fixed):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("similarity", ["paper", "corrected"])
@pytest.mark.parametrize("regularizer", ["paper", "corrected"])
def test_finite_at_zero_distance_and_saturated_tanh(dtype, similarity, regularizer):
    # every code identical within and across modalities (d = 0 everywhere, beta
    # at its floor), then codes at exactly +-1 from saturated tanh, then zeros
    pre_activations = {
        "identical": torch.full((4, 6), 0.3),
        "saturated": torch.tensor([[50.0, -50.0, 50.0, 50.0, -50.0, 50.0]] * 4),
        "zeros": torch.zeros(4, 6),
    }
    labels = [0, 1, 0, 1]
    for name, z in pre_activations.items():
        z_m = z.clone().to(dtype).requires_grad_(True)
        z_p = z.clone().to(dtype).requires_grad_(True)
        logits = torch.zeros(4, 3, dtype=dtype, requires_grad=True)
        total, parts = dcpha_loss([logits, logits], [logits, logits], [torch.tanh(z_m), torch.tanh(z_p)], labels,
                                  gamma=5.0, similarity=similarity, regularizer=regularizer)
        assert torch.isfinite(total), name
        assert all(torch.isfinite(p) for p in parts.values()), name
        total.backward()
        for grad in (z_m.grad, z_p.grad, logits.grad):
            assert torch.isfinite(grad).all(), name


# --------------------------------------------------------------------------
# The printed forms fail; the corrected ones do not (free code tensors)
# --------------------------------------------------------------------------
N_SUBJECTS, N_BITS = 12, 16
CODE_LABELS = torch.tensor([0, 1, 2] * 4)


def optimise_free_codes(similarity, regularizer, lambda_r, seed, steps=200):
    """Minimise beta J2 + lambda_r R over free pre-activations z, h = tanh(z)."""
    generator = torch.Generator().manual_seed(seed)
    z_m = (0.5 * torch.randn(N_SUBJECTS, N_BITS, generator=generator)).requires_grad_(True)
    z_p = (0.5 * torch.randn(N_SUBJECTS, N_BITS, generator=generator)).requires_grad_(True)
    start = (z_m.detach().clone(), z_p.detach().clone())
    optimiser = torch.optim.Adam([z_m, z_p], lr=0.05)
    same = dcpha_same_label(CODE_LABELS, 2)
    for _ in range(steps):
        h_m, h_p = torch.tanh(z_m), torch.tanh(z_p)
        s_m = dcpha_multimanifold_similarity([h_m, h_p], CODE_LABELS, variant=similarity)
        loss = dcpha_j2(s_m, same) + lambda_r * dcpha_regularizer(torch.cat([h_m, h_p]), variant=regularizer)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return start, (z_m.detach(), z_p.detach())


def sign(z):
    return torch.where(z >= 0, 1.0, -1.0)


def mean_cross_modal_hamming(z_m, z_p, different):
    b_m, b_p = sign(z_m), sign(z_p)
    hamming = (N_BITS - b_m @ b_p.T) / 2
    mask = CODE_LABELS[:, None] != CODE_LABELS[None, :]
    return hamming[mask if different else ~mask].mean().item()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_printed_regularizer_collapses_every_code(seed):
    # Eq. (10) as printed weighs R by 2K next to J2's mean over pairs
    _, (z_m, z_p) = optimise_free_codes("corrected", "paper", 2 * N_BITS, seed)
    codes = sign(torch.cat([z_m, z_p]))
    assert torch.all(codes == 1.0)  # one code for everybody: all bits +1
    _, (z_m, z_p) = optimise_free_codes("corrected", "corrected", 2 * N_BITS, seed)
    assert len(torch.unique(sign(torch.cat([z_m, z_p])), dim=0)) > 3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_printed_s_h_pulls_different_diagnoses_together(seed):
    (z_m0, z_p0), (z_m, z_p) = optimise_free_codes("paper", "corrected", 0.1, seed)
    before = mean_cross_modal_hamming(z_m0, z_p0, different=True)
    after = mean_cross_modal_hamming(z_m, z_p, different=True)
    assert after < before - 0.5
    # the corrected S_H pushes them apart, from the same start
    (z_m0, z_p0), (z_m, z_p) = optimise_free_codes("corrected", "corrected", 0.1, seed)
    assert mean_cross_modal_hamming(z_m, z_p, different=True) > before + 1.0
    # and brings a subject's two scans (and their classmates) together
    assert mean_cross_modal_hamming(z_m, z_p, different=False) < mean_cross_modal_hamming(z_m, z_p, different=True)
