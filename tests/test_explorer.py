"""The Hamming-space explorer's callbacks, checked on small hand-made codes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurohash_lite import metrics
from neurohash_lite.viz import HammingExplorer, classical_mds


def random_codes(rng, n, k):
    return np.where(rng.random((n, k)) < 0.5, -1, 1).astype(np.int8)


def make_explorer(n=12, bits=(3, 8), seed=0, thumbnails=True, k=4):
    rng = np.random.default_rng(seed)
    codes = {b: (random_codes(rng, n, b), random_codes(rng, n, b)) for b in bits}
    labels = rng.integers(0, 3, size=n)
    ids = [f"sub-{i:03d}" for i in range(n)]
    thumbs = {"mri": rng.random((n, 6, 6)), "pet": rng.random((n, 6, 6))} if thumbnails else None
    return HammingExplorer(codes, labels, ids, thumbs, k=k, seed=seed)


def test_neighbours_by_hand():
    # K = 4, query = subject 0's sMRI code; PET codes of subjects 1..3 at distances 2, 0, 2.
    mri = np.array([[1, 1, 1, 1], [1, 1, 1, 1], [-1, -1, -1, -1], [1, 1, 1, 1]])
    pet = np.array([[1, 1, 1, 1], [1, 1, -1, -1], [1, 1, 1, 1], [-1, -1, 1, 1]])
    explorer = HammingExplorer({4: (mri, pet)}, [0, 0, 1, 0], ["a", "b", "c", "d"], k=3)
    found = explorer.neighbours(query=0, modality="mri")
    assert found.indices.tolist() == [2, 1, 3]        # d = 0, then the tie d = 2 by subject row
    assert found.distances.tolist() == [0, 2, 2]
    assert found.relevant.tolist() == [False, True, True]
    assert found.subject_ids.tolist() == ["c", "b", "d"]
    # The query's own subject never comes back, even though its PET code is identical.
    assert 0 not in found.indices


def test_picking_a_query_changes_the_neighbours_sorted_with_stable_ties():
    explorer = make_explorer(n=30, bits=(8,), k=10)
    results = []
    for query in range(5):
        for modality in ("mri", "pet"):
            found = explorer.neighbours(query=query, modality=modality)
            other = "pet" if modality == "mri" else "mri"
            # Brute force: all other subjects, sorted by (distance, row).
            d = metrics.hamming_distance(explorer.codes[8][modality][query], explorer.codes[8][other]).astype(int)
            rows = [r for r in range(30) if r != query]
            expected = sorted(rows, key=lambda r: (d[r], r))[:10]
            assert found.indices.tolist() == expected
            assert np.all(np.diff(found.distances) >= 0)
            results.append(tuple(found.indices))
    assert len(set(results)) > 1


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 8))
def test_radius_counts_equal_the_metrics_module(seed, radius):
    explorer = make_explorer(n=15, bits=(8,), seed=seed % 50, thumbnails=False)
    query = seed % 15
    for modality, other in (("mri", "pet"), ("pet", "mri")):
        report = explorer.radius_report(radius, query=query, modality=modality)
        rows = np.array([r for r in range(15) if r != query])
        code, database = explorer.codes[8][modality][query], explorer.codes[8][other][rows]
        labels = explorer.labels[rows]
        d = metrics.hamming_distance(code, database).astype(int)
        relevant = labels == explorer.labels[query]
        assert report.n_inside == int((d <= radius).sum())
        assert report.n_relevant_inside == int(((d <= radius) & relevant).sum())
        assert sorted(report.inside.tolist()) == sorted(rows[d <= radius].tolist())
        _, precision, recall = metrics.pr_curve_hamming_radius(code, database, explorer.labels[query], labels)
        np.testing.assert_equal(report.precision, precision[radius])
        np.testing.assert_equal(report.recall, recall[radius])
        if report.n_inside:
            assert report.precision == pytest.approx(report.n_relevant_inside / report.n_inside)
        if report.n_relevant:
            assert report.recall == pytest.approx(report.n_relevant_inside / report.n_relevant)


def test_radius_report_by_hand():
    mri = np.array([[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]])
    pet = np.array([[1, 1, 1, 1], [1, 1, 1, -1], [1, -1, -1, -1], [1, 1, 1, 1]])
    explorer = HammingExplorer({4: (mri, pet)}, [0, 0, 0, 1], ["a", "b", "c", "d"], k=2)
    report = explorer.radius_report(1, query=0, modality="mri")
    # PET of b (d = 1, relevant), c (d = 3, relevant), d (d = 0, not relevant)
    assert (report.n_inside, report.n_relevant_inside, report.n_relevant) == (2, 1, 2)
    assert report.precision == pytest.approx(0.5) and report.recall == pytest.approx(0.5)


def test_map_is_deterministic_for_a_seed_and_changes_with_it():
    explorer = make_explorer(n=20, bits=(8,))
    np.testing.assert_array_equal(explorer.code_map(seed=3), explorer.code_map(seed=3))
    assert not np.array_equal(explorer.code_map(seed=3), explorer.code_map(seed=4))
    assert explorer.code_map().shape == (40, 2)
    # A rebuilt explorer with the same data and seed draws the same map.
    np.testing.assert_array_equal(make_explorer(n=20, bits=(8,)).code_map(), explorer.code_map())


def test_classical_mds_recovers_euclidean_distances():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(10, 2))
    d = np.linalg.norm(points[:, None] - points[None], axis=-1)
    coords = classical_mds(d)
    np.testing.assert_allclose(np.linalg.norm(coords[:, None] - coords[None], axis=-1), d, atol=1e-8)
    with pytest.raises(ValueError, match="square"):
        classical_mds(np.zeros((2, 3)))


def test_switching_k_keeps_the_query_and_clips_the_radius():
    explorer = make_explorer(bits=(3, 8))
    explorer.select(query=7, modality="pet", n_bits=8, radius=6)
    state = explorer.select(n_bits=3)
    assert (state["query"], state["modality"], state["n_bits"], state["radius"]) == (7, "pet", 3, 3)
    assert explorer.neighbours().indices.tolist() == explorer.neighbours(query=7, modality="pet", n_bits=3).indices.tolist()
    with pytest.raises(ValueError, match="n_bits"):
        explorer.select(n_bits=16)
    with pytest.raises(ValueError, match="query"):
        explorer.select(query=99)


def test_bit_balance_and_correlation_by_hand():
    mri = np.array([[1, 1, -1], [1, -1, -1]])
    pet = np.array([[1, 1, 1], [-1, -1, 1]])
    explorer = HammingExplorer({3: (mri, pet)}, [0, 2], ["a", "b"])
    balance = explorer.bit_balance(3)
    np.testing.assert_allclose(balance[0], [1.0, 1.0, 0.5])     # subject a: (1,1,-1), (1,1,1)
    assert np.isnan(balance[1]).all()                           # no MCI
    np.testing.assert_allclose(balance[2], [0.5, 0.0, 0.5])     # subject b: (1,-1,-1), (-1,-1,1)
    corr = explorer.bit_correlation(3)
    codes = np.array([[1, 1, -1], [1, -1, -1], [1, 1, 1], [-1, -1, 1]], dtype=float)
    np.testing.assert_allclose(corr, np.corrcoef(codes.T))
    counts = explorer.corner_counts()
    assert counts[(1, 1, -1)].tolist() == [1, 0, 0] and counts[(-1, -1, 1)].tolist() == [0, 0, 1]
    assert sum(c.sum() for c in counts.values()) == 4


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="codes"):
        HammingExplorer({}, [0, 1], ["a", "b"])
    with pytest.raises(ValueError, match="shape"):
        HammingExplorer({4: (np.ones((2, 4)), np.ones((3, 4)))}, [0, 1], ["a", "b"])
    with pytest.raises(ValueError, match="codes"):
        HammingExplorer({4: (np.zeros((2, 4)), np.ones((2, 4)))}, [0, 1], ["a", "b"])
    explorer = make_explorer(bits=(8,))
    with pytest.raises(ValueError, match="cube"):
        explorer.plot_cube()
    with pytest.raises(ValueError, match="radius"):
        explorer.radius_report(9)


def test_static_figures_draw_every_view():
    explorer = make_explorer(bits=(3, 8))
    for fig in (explorer.plot_neighbours(), explorer.plot_radius(), explorer.plot_map(),
                explorer.plot_bits(), explorer.plot_cube()):
        assert all(ax.get_title() or fig._suptitle for ax in fig.axes if ax.get_label() != "<colorbar>")
        plt.close(fig)


def test_widget_callbacks_update_the_state():
    pytest.importorskip("ipywidgets")
    explorer = make_explorer(bits=(3, 8))
    box = explorer.widget()
    (query, modality), (n_bits, radius) = box.children[0].children, box.children[1].children
    n_bits.value = 8
    radius.value = 7
    query.value = 5
    modality.value = "pet"
    assert explorer.state == {"query": 5, "modality": "pet", "n_bits": 8, "radius": 7}
    n_bits.value = 3
    assert explorer.state["query"] == 5 and explorer.state["radius"] == 3 and radius.max == 3
    plt.close("all")
