"""Table I's shallow methods (CVH, SCM, SePH) and their 90-region input: each step checked, each through the runner."""

from __future__ import annotations

import copy
import math

import nibabel as nib
import numpy as np
import pytest
import torch

from neurohash_lite import experiments
from neurohash_lite.data import load_cohort, load_tier_cohort
from neurohash_lite.data.roi import Atlas, RoiFeatures, load_atlas, roi_features
from neurohash_lite.experiments import CompareConfig, compare, load_results, validate_results
from neurohash_lite.runner import RunContext, seed_data
from neurohash_lite.shallow import cvh, scm, seph
from neurohash_lite.shallow.features import context_cohort_root, seed_features
from neurohash_lite.shallow.scm import (
    SemanticCorrelationMaximization,
    _ridge,
    scm_semantic_covariance,
    scm_similarity,
    scm_top_pairs,
)
from neurohash_lite.shallow.seph import (
    KernelLogisticHash,
    SemanticsPreservingHashing,
    seph_affinity,
    seph_gradient,
    seph_learn_codes,
    seph_objective,
)


def labelled_views(n=60, d_x=5, d_y=4, noise=0.5, seed=0):
    """Two views of three classes: class means plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    x = np.eye(3)[labels] @ rng.normal(size=(3, d_x)) + noise * rng.normal(size=(n, d_x))
    y = np.eye(3)[labels] @ rng.normal(size=(3, d_y)) + noise * rng.normal(size=(n, d_y))
    return x, y, labels


# --------------------------------------------------------------------------
# The 90-region features
# --------------------------------------------------------------------------
def test_region_constant_volume_gives_back_the_constants():
    labels = np.zeros((4, 5, 6), dtype=np.int64)
    labels[:2, :, :3] = 1
    labels[2:, :2, :] = 2
    labels[2:, 3:, 1:] = 3
    atlas = Atlas("three", labels, np.eye(4), ("a", "b", "c"))
    values = np.array([-7.0, 1.5, 2.25, -3.0])  # background, regions 1-3
    volumes = np.stack([values[labels], 2 * values[labels]])
    assert np.array_equal(roi_features(volumes, atlas), [[1.5, 2.25, -3.0], [3.0, 4.5, -6.0]])
    assert np.array_equal(roi_features(values[labels], atlas), [[1.5, 2.25, -3.0]])


def test_aal90_region_constant_image_gives_back_the_constants():
    atlas = load_atlas("aal90")
    assert atlas.n_regions == 90 and atlas.shape == (181, 217, 181)
    assert atlas.region_names[:2] == ("Precentral_L", "Precentral_R")
    assert atlas.region_names[36:38] == ("Hippocampus_L", "Hippocampus_R")
    assert atlas.labels.max() == 90  # the cerebellum (91-116) is left out
    values = np.concatenate([[1000.0], np.arange(1, 91) * 0.5 - 7])
    image = nib.Nifti1Image(values[atlas.labels].astype(np.float32), atlas.affine)
    assert np.allclose(roi_features([image], atlas)[0], values[1:], rtol=0, atol=1e-6)


def test_wrong_shaped_atlas_or_volume_is_a_clear_error():
    atlas = Atlas("one", np.ones((2, 2, 2), dtype=np.int64), np.eye(4), ("a",))
    with pytest.raises(ValueError, match=r"shape \(n, 2, 2, 2\).*atlas"):
        roi_features(np.zeros((3, 2, 2, 3)), atlas)
    with pytest.raises(ValueError, match="3D integer"):
        Atlas("flat", np.ones((2, 2), dtype=np.int64), np.eye(4), ("a",))
    with pytest.raises(ValueError, match="3D integer"):
        Atlas("float", np.ones((2, 2, 2)), np.eye(4), ("a",))
    with pytest.raises(ValueError, match="no voxel"):
        Atlas("missing", np.ones((2, 2, 2), dtype=np.int64), np.eye(4), ("a", "b"))
    with pytest.raises(ValueError, match="affine"):
        Atlas("affine", np.ones((2, 2, 2), dtype=np.int64), np.zeros((4, 4)), ("a",))
    with pytest.raises(ValueError, match="aal90"):
        load_atlas("aal116")


@pytest.fixture(scope="module")
def smoke_cohort():
    return load_tier_cohort("smoke")


def test_cohort_features_are_cached_and_match_its_rows(smoke_cohort, tmp_path):
    features = roi_features(smoke_cohort, cache_dir=tmp_path)
    assert isinstance(features, RoiFeatures)
    assert features.mri.shape == (smoke_cohort.n_subjects, 90)
    assert features.pet.shape == (smoke_cohort.n_paired, 90)
    assert np.array_equal(features.subject_ids, smoke_cohort.subject_ids)
    assert np.array_equal(features.paired_labels, smoke_cohort.paired_labels)
    assert np.all(np.isfinite(features.mri)) and np.all(np.isfinite(features.pet))
    (cached,) = tmp_path.glob("roi-aal90-*.npz")
    again = roi_features(smoke_cohort.root, cache_dir=tmp_path)
    assert np.array_equal(again.mri, features.mri) and np.array_equal(again.pet, features.pet)
    # the MRI shows the disease in the hippocampus: AD below NC
    hippocampus = features.mri[:, 36:38].mean(axis=1)
    assert hippocampus[features.labels == 2].mean() < hippocampus[features.labels == 0].mean()


def test_a_cohort_loaded_in_3d_is_read_from_its_arrays(smoke_cohort):
    folder = roi_features(smoke_cohort.root, cache_dir=False)
    volumes = load_cohort(smoke_cohort.root, spatial_dims=3, voxel_size_mm=4.0, cache_dir=False)
    arrays = roi_features(volumes)
    assert arrays.mri.shape == folder.mri.shape and arrays.pet.shape == folder.pet.shape
    # the same scans, read from the files and from the loader's 4 mm volumes: the region profiles agree
    for a, b in ((arrays.mri, folder.mri), (arrays.pet, folder.pet)):
        agreement = [np.corrcoef(u, v)[0, 1] for u, v in zip(a, b)]
        assert min(agreement) > 0.99


# --------------------------------------------------------------------------
# SCM
# --------------------------------------------------------------------------
def test_scm_similarity_is_plus_one_for_equal_labels_and_minus_one_otherwise():
    s = scm_similarity(np.array([0, 0, 2]), n_classes=3)
    assert np.array_equal(s, [[1, 1, -1], [1, 1, -1], [-1, -1, 1]])
    # multi-label vectors: the cosine mapped to [-1, 1]; (1, 1) vs (1, 0): 2 / sqrt 2 - 1
    s = scm_similarity(np.array([[1, 1], [1, 0]]))
    assert s[0, 1] == pytest.approx(2 / math.sqrt(2) - 1)


@pytest.mark.parametrize("labels", [np.array([0, 1, 2, 0, 1, 1, 2]), np.random.default_rng(1).integers(0, 2, (7, 4))])
def test_scm_linear_form_equals_the_explicit_n_by_n_form(labels):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(7, 2))
    explicit = x.T @ scm_similarity(labels) @ y
    assert np.allclose(scm_semantic_covariance(x, y, labels), explicit)


def covariances(x, y, labels, k, reg=1e-3):
    xc, yc = x - x.mean(0), y - y.mean(0)
    return xc, yc, _ridge(xc.T @ xc, reg), _ridge(yc.T @ yc, reg), k * xc.T @ scm_similarity(labels) @ yc


def test_scm_orth_projections_are_orthogonal_and_maximise_the_trace():
    x, y, labels = labelled_views(d_x=3, d_y=3)
    model = SemanticCorrelationMaximization(2, variant="orth").fit(x, y, labels)
    _, _, c_xx, c_yy, c_xy = covariances(x, y, labels, 2)
    w_x, w_y = model.projections_["mri"], model.projections_["pet"]
    assert np.allclose(w_x.T @ c_xx @ w_x, np.eye(2))
    assert np.allclose(w_y.T @ c_yy @ w_y, np.eye(2))
    best = np.trace(w_x.T @ c_xy @ w_y)
    assert best == pytest.approx(np.sqrt(model.eigenvalues_).sum())
    # brute force over the constraint set: every feasible W is L^-T Q with Q orthonormal (3 x 2).
    # Random draws never beat it; block-coordinate ascent (the best Q_x for a fixed Q_y is the polar factor
    # of M Q_y, and vice versa) from random starts climbs to it and no higher.
    rng = np.random.default_rng(0)
    root_x, root_y = (np.linalg.inv(np.linalg.cholesky(c)).T for c in (c_xx, c_yy))
    m = root_x.T @ c_xy @ root_y

    def polar(a):
        u, _, vt = np.linalg.svd(a, full_matrices=False)
        return u @ vt

    draws = [(np.linalg.qr(rng.normal(size=(3, 2)))[0], np.linalg.qr(rng.normal(size=(3, 2)))[0])
             for _ in range(5000)]
    assert max(np.trace(q_x.T @ m @ q_y) for q_x, q_y in draws) <= best * (1 + 1e-9)
    climbed = []
    for q_x, q_y in draws[:10]:
        for _ in range(500):
            q_x = polar(m @ q_y)
            q_y = polar(m.T @ q_x)
        climbed.append(np.trace((root_x @ q_x).T @ c_xy @ (root_y @ q_y)))
    assert max(climbed) <= best * (1 + 1e-9)
    assert max(climbed) == pytest.approx(best, rel=1e-6)


def test_scm_orth_one_bit_against_a_grid_of_every_direction():
    x, y, labels = labelled_views(d_x=2, d_y=2, seed=3)
    model = SemanticCorrelationMaximization(1, variant="orth").fit(x, y, labels)
    _, _, c_xx, c_yy, c_xy = covariances(x, y, labels, 1)
    root_x, root_y = (np.linalg.inv(np.linalg.cholesky(c)).T for c in (c_xx, c_yy))
    angles = np.linspace(0, 2 * np.pi, 721)
    circle = np.stack([np.cos(angles), np.sin(angles)])
    grid = (root_x @ circle).T @ c_xy @ (root_y @ circle)  # every feasible (w_x, w_y) on a 0.5-degree grid
    best = float(model.projections_["mri"][:, 0] @ c_xy @ model.projections_["pet"][:, 0])
    assert grid.max() <= best * (1 + 1e-9)
    assert grid.max() == pytest.approx(best, rel=1e-4)


def test_scm_seq_bits_come_out_in_the_papers_order():
    x, y, labels = labelled_views(n=90, d_x=6, d_y=5, noise=1.0, seed=2)
    k = 6
    model = SemanticCorrelationMaximization(k, variant="seq").fit(x, y, labels)
    assert model.n_semantic_bits_ >= 3
    xc, yc, c_xx, c_yy, _ = covariances(x, y, labels, k)
    residual = k * scm_similarity(labels)  # c S, n x n
    w_x, w_y = model.projections_["mri"], model.projections_["pet"]
    for t in range(model.n_semantic_bits_):
        # bit t is the leading pair of the explicit residual c S - sum_{k<t} b_x^k b_y^k^T
        wx, wy, sigma = scm_top_pairs(c_xx, c_yy, xc.T @ residual @ yc, 1)
        assert abs(wx[:, 0] @ c_xx @ w_x[:, t]) == pytest.approx(1.0, abs=1e-8)
        assert abs(wy[:, 0] @ c_yy @ w_y[:, t]) == pytest.approx(1.0, abs=1e-8)
        assert model.eigenvalues_[t] == pytest.approx(sigma[0] ** 2)
        b_x = np.where(xc @ w_x[:, t] >= 0, 1.0, -1.0)
        b_y = np.where(yc @ w_y[:, t] >= 0, 1.0, -1.0)
        residual = residual - np.outer(b_x, b_y)
    learned = model.eigenvalues_[:model.n_semantic_bits_]
    assert np.all(np.diff(learned) <= 1e-9 * learned[0])  # each bit reduces what is left
    # the first bit is SCM-orth's first pair
    orth = SemanticCorrelationMaximization(1, variant="orth").fit(x, y, labels)
    assert abs(orth.projections_["mri"][:, 0] @ c_xx @ w_x[:, 0]) == pytest.approx(1.0, abs=1e-8)


def test_scm_codes_and_limits():
    x, y, labels = labelled_views()
    model = SemanticCorrelationMaximization(3).fit(x, y, labels)
    codes = model.encode(y, "pet")
    assert codes.shape == (60, 3) and codes.dtype == np.int8 and set(np.unique(codes)) <= {-1, 1}
    # the codes of a class agree across modalities more often than not
    assert (model.encode(x, "mri") == codes).mean() > 0.7
    with pytest.raises(ValueError, match="orthogonal directions"):
        SemanticCorrelationMaximization(6, variant="orth").fit(x, y, labels)
    with pytest.raises(ValueError, match="variant"):
        SemanticCorrelationMaximization(2, variant="both").fit(x, y, labels)


# --------------------------------------------------------------------------
# SePH
# --------------------------------------------------------------------------
def test_seph_objective_by_hand():
    # labels (0, 0, 1): p_01 = p_10 = 1/2, every other p = 0
    p = seph_affinity(np.array([0, 0, 1]))
    assert np.allclose(p, [[0, 0.5, 0], [0.5, 0, 0], [0, 0, 0]])
    # H = (1, 1, -1): d_01 = 0, d_02 = d_12 = 4/4 = 1; (1 + d)^-1 = 1, 1/2, 1/2, twice each: sum 4
    # q_01 = 1/4, so KL = 2 * 1/2 * log(1/2 / 1/4) = log 2; |h| = 1: no quantization
    h = torch.tensor([[1.0], [1.0], [-1.0]], dtype=torch.float64)
    assert seph_objective(h, p, alpha=0.3).item() == pytest.approx(math.log(2))
    # H = (0.5, 1, -1): d_01 = 0.25/4, d_02 = 2.25/4, d_12 = 1; quantization alpha (0.5 - 1)^2
    num = [1 / (1 + 0.0625), 1 / (1 + 0.5625), 0.5]
    q_01 = num[0] / (2 * sum(num))
    h = torch.tensor([[0.5], [1.0], [-1.0]], dtype=torch.float64)
    assert seph_objective(h, p, alpha=0.3).item() == pytest.approx(math.log(0.5 / q_01) + 0.3 * 0.25)


def test_seph_gradient_by_hand_and_against_autograd():
    p = seph_affinity(np.array([0, 0, 1]))
    # at H = (1, 1, -1): (p - q) num = 1/4 for (0, 1), -1/16 for (0, 2) and (1, 2)
    # grad_0 = 1/4 (1 - 1) - 1/16 (1 + 1) = -1/8, grad_1 = -1/8, grad_2 = -1/16 (-2) * 2 = 1/4
    h = np.array([[1.0], [1.0], [-1.0]])
    assert np.allclose(seph_gradient(h, p, alpha=0.3), [[-0.125], [-0.125], [0.25]])
    rng = np.random.default_rng(0)
    labels = np.array([0, 1, 2, 0, 1, 2, 0])
    p = seph_affinity(labels)
    h = torch.tensor(rng.normal(size=(7, 4)), dtype=torch.float64, requires_grad=True)
    seph_objective(h, p, alpha=0.05).backward()
    assert np.allclose(seph_gradient(h.detach().numpy(), p, alpha=0.05), h.grad.numpy())
    assert torch.autograd.gradcheck(lambda v: seph_objective(v, p, 0.05), (h.detach().clone().requires_grad_(),))


@pytest.mark.parametrize("n", [60, 21])
def test_seph_step_one_decreases_its_objective(n):
    labels = np.arange(n) % 3
    p = seph_affinity(labels)
    alpha = 0.01 / (8 * n)
    h, history = seph_learn_codes(p, 8, alpha, n_iter=100, seed=0)
    # the authors' fixed step (500) suits a few hundred subjects; with 21 it overshoots after a few steps,
    # and the best codes met are kept, as in their minKLD.m
    assert history.min() < 0.3 * history[0]
    if n == 60:
        assert history[10] < 0.1 * history[0]
    # the history is the objective itself, computed directly, and the codes returned are the best met
    direct = seph_objective(torch.tensor(h), p, alpha).item()
    assert direct == pytest.approx(history.min(), rel=1e-9)
    # the codes separate the classes: same-class pairs closer than different-class pairs in Hamming distance
    b = np.where(h >= 0, 1, -1)
    distance = (b[:, None, :] != b[None, :, :]).sum(-1)
    same = labels[:, None] == labels[None, :]
    assert distance[same].mean() < distance[~same].mean() - 2


@pytest.mark.parametrize("n_anchors", [500, 20])  # every training point, or 20 k-means centres
def test_kernel_logistic_regression_predicts_the_learned_codes(n_anchors):
    x, y, labels = labelled_views(noise=0.8)
    h, _ = seph_learn_codes(seph_affinity(labels), 8, 0.01 / (8 * 60), seed=1)
    codes = np.where(h >= 0, 1, -1)
    model = KernelLogisticHash(n_anchors=n_anchors, seed=0).fit(x - x.mean(0), codes)
    assert len(model.anchors_) == min(n_anchors, 60)
    accuracy = (model.predict(x - x.mean(0)) == codes).mean()
    assert accuracy >= 0.95  # the stated bar: 95 % of the training bits


def test_kernel_logistic_regression_solves_a_negated_bit_once():
    x, _, labels = labelled_views()
    codes = np.where(np.eye(3)[labels] @ np.array([[1.0], [-1.0], [1.0]]) >= 0, 1, -1)
    both = np.hstack([codes, -codes, codes])
    model = KernelLogisticHash(seed=0).fit(x, both)
    assert np.allclose(model.weights_[:, 1], -model.weights_[:, 0])
    assert np.allclose(model.weights_[:, 2], model.weights_[:, 0])


def test_seph_codes_per_modality():
    x, y, labels = labelled_views()
    model = SemanticsPreservingHashing(6).fit(x, y, labels)
    assert model.alpha_effective_ == pytest.approx(0.01 / (6 * 60))
    for data, modality in ((x, "mri"), (y, "pet")):
        codes = model.encode(data, modality)
        assert codes.shape == (60, 6) and set(np.unique(codes)) <= {-1, 1}
    assert (model.encode(x, "mri") == model.encode(y, "pet")).mean() > 0.8


# --------------------------------------------------------------------------
# Through the runner
# --------------------------------------------------------------------------
ENTRIES = {
    "cvh": experiments.Method("CVH", cvh.run),
    "seph": experiments.Method("SePH", seph.run),
    "scm": experiments.Method("SCM", scm.run),
}


@pytest.mark.parametrize("method", sorted(ENTRIES))
def test_trains_through_the_runner_on_regional_features(method, monkeypatch, tmp_path):
    monkeypatch.setitem(experiments.METHODS, method, ENTRIES[method])
    path = tmp_path / "r.json"
    compare(CompareConfig(scale="smoke", seeds=(0,), bits=(8,), epochs=1, pretrain_epochs=1, device="cpu",
                          methods=("random", method)), path, verbose=False)
    results = load_results(path)
    validate_results(results)
    run = next(r for r in results["runs"] if r["method"] == method)
    assert run["status"] == "done"
    assert run["hyperparameters"]["features"] == "roi" and run["hyperparameters"]["n_regions"] == 90


@pytest.fixture(scope="module")
def smoke_context(smoke_cohort):
    config = CompareConfig(scale="smoke", seeds=(0,), bits=(8,), epochs=1, pretrain_epochs=1, device="cpu").resolved()
    return RunContext(config, config.tier(), torch.device("cpu"), int(smoke_cohort.mri.shape[1]),
                      seed_data(smoke_cohort, 0, protocol="ahs"))


@pytest.mark.parametrize("entry, options", [(scm.run, {"variant": "orth"}), (scm.run, {"features": "pca"}),
                                            (seph.run, {"features": "pca"}), (cvh.run, {"features": "pca"})])
def test_options_of_the_entry_points(smoke_context, entry, options):
    run = entry(smoke_context, 8, **options)
    data = smoke_context.data
    assert run.codes["query", "mri"].shape == (len(data.query), 8)
    assert run.codes["database", "pet"].shape == (len(data.database), 8)
    assert set(np.unique(run.codes["query", "pet"])) <= {-1, 1}
    assert all(run.hyperparameters[key] == value for key, value in options.items())


def test_features_follow_the_seeds_rows(smoke_context, smoke_cohort):
    chosen = seed_features(smoke_context, "roi")
    folder = roi_features(smoke_cohort.root)
    data = smoke_context.data
    for part in ("train", "query", "database"):
        mri, pet, labels = chosen[part]
        index = getattr(data, part).indices.numpy()
        assert np.array_equal(mri, folder.paired_mri[index]) and np.array_equal(pet, folder.pet[index])
        assert np.array_equal(labels, smoke_cohort.paired_labels[index])


def test_features_of_another_cohort_are_refused(smoke_context):
    other = copy.copy(smoke_context)
    other.data = copy.copy(smoke_context.data)
    other.data.query_subjects = smoke_context.data.query_subjects[::-1]
    with pytest.raises(ValueError, match="query subjects"):
        seed_features(other, "roi")
    missing = copy.copy(smoke_context)
    missing.data = copy.copy(smoke_context.data)
    missing.data.cohort_root = smoke_context.data.cohort_root / "no-such-folder"
    with pytest.raises(ValueError, match="features='pca'"):
        context_cohort_root(missing)
    with pytest.raises(ValueError, match="features"):
        seed_features(smoke_context, "voxels")
