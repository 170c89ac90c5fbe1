"""Paired differences of methods: values by hand, the bootstrap against its definition."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from neurohash_lite.claims import direction_gap, method_ranking, paired_bootstrap, paired_difference


def make_run(method, n_bits, seed, mri_to_pet, pet_to_mri):
    """A finished run as the results file stores it, from per-query APs."""
    m2p, p2m = list(mri_to_pet), list(pet_to_mri)
    mean = lambda values: float(np.mean([v for v in values if v is not None]))
    return {"method": method, "n_bits": n_bits, "seed": seed, "status": "done",
            "map": {"mri_to_pet": mean(m2p), "pet_to_mri": mean(p2m), "mean": (mean(m2p) + mean(p2m)) / 2},
            "ap_per_query": {"mri_to_pet": m2p, "pet_to_mri": p2m}}


def test_difference_by_hand_and_its_verdict():
    a = make_run("ahs", 16, 0, [0.9, 0.5, 0.7], [0.6, 0.4, 0.8])
    b = make_run("triplet", 16, 0, [0.8, 0.4, 0.6], [0.5, 0.3, 0.7])     # every AP 0.1 lower
    results = {"runs": [a, b]}
    better = paired_difference(results, "ahs", "triplet")
    assert better.mean == pytest.approx(0.1)
    assert better.low == pytest.approx(0.1) and better.high == pytest.approx(0.1)
    assert better.verdict == "supported" and better.wins == 1 and better.runs == 1
    worse = paired_difference(results, "triplet", "ahs")
    assert worse.verdict == "contradicted" and worse.mean == pytest.approx(-0.1)
    same = paired_difference(results, "ahs", "ahs")
    assert same.mean == 0 and same.verdict == "inconclusive"
    # one direction only
    assert paired_difference(results, "ahs", "triplet", direction="pet_to_mri").mean == pytest.approx(0.1)


def test_both_directions_give_the_difference_of_average_maps_and_runs_weigh_equally():
    rng = np.random.default_rng(0)
    runs = []
    for method, (n_bits, seed, size) in itertools.product(("a", "b"), ((16, 0, 4), (32, 0, 7), (16, 1, 5))):
        runs.append(make_run(method, n_bits, seed, rng.random(size), rng.random(size)))
    results = {"runs": runs}
    by_key = {(r["method"], r["n_bits"], r["seed"]): r["map"]["mean"] for r in runs}
    expected = np.mean([by_key["a", k, s] - by_key["b", k, s] for k, s in ((16, 0), (32, 0), (16, 1))])
    difference = paired_difference(results, "a", "b", n_resamples=500)
    assert difference.mean == pytest.approx(expected)
    assert difference.low <= difference.mean <= difference.high
    assert set(difference.per_run) == {(16, 0), (32, 0), (16, 1)}
    only_16 = paired_difference(results, "a", "b", bits=(16,))
    assert set(only_16.per_run) == {(16, 0), (16, 1)}


def test_skipped_queries_are_left_out_of_both_sides():
    a = make_run("a", 8, 0, [1.0, None, 0.5], [0.5, 0.5, 0.5])
    b = make_run("b", 8, 0, [0.5, 0.2, 0.5], [0.5, 0.5, 0.5])
    difference = paired_difference({"runs": [a, b]}, "a", "b", direction="mri_to_pet")
    assert difference.mean == pytest.approx((0.5 + 0.0) / 2)


def test_direction_gap_pairs_a_subjects_two_queries():
    run = make_run("ahs", 16, 0, [0.9, 0.6], [0.5, 0.7])
    gap = direction_gap({"runs": [run]}, "ahs")
    assert gap.mean == pytest.approx(((0.9 - 0.5) + (0.6 - 0.7)) / 2)
    assert gap.per_run == {(16, 0): pytest.approx(0.15)}


def test_bootstrap_of_one_group_matches_its_exact_distribution():
    # three subjects: all 27 resamples are equally likely; their means give the exact percentiles
    group = np.array([0.0, 0.3, 1.0])
    exact = np.array([group[list(pick)].mean() for pick in itertools.product(range(3), repeat=3)])
    mean, low, high = paired_bootstrap([group], n_resamples=200_000, seed=1, confidence=0.5)
    assert mean == pytest.approx(group.mean())
    # the resampled mean takes 10 distinct values; 0.25 and 0.75 fall inside atoms (27 is odd)
    assert low == pytest.approx(np.percentile(exact, 25, method="inverted_cdf"))
    assert high == pytest.approx(np.percentile(exact, 75, method="inverted_cdf"))


def test_bootstrap_width_shrinks_like_one_over_root_n():
    rng = np.random.default_rng(3)
    widths = []
    for n in (25, 400):
        _, low, high = paired_bootstrap([rng.normal(0, 1, n)], n_resamples=4000, seed=0)
        widths.append(high - low)
        assert high - low == pytest.approx(2 * 1.96 / np.sqrt(n), rel=0.2)
    assert widths[0] / widths[1] == pytest.approx(4, rel=0.25)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="groups is empty"):
        paired_bootstrap([])
    with pytest.raises(ValueError, match=r"groups\[1\]"):
        paired_bootstrap([[0.1], [np.nan]])
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap([[0.1]], confidence=1.0)
    with pytest.raises(ValueError, match="no \\(K, seed\\) run"):
        paired_difference({"runs": [make_run("a", 8, 0, [1], [1])]}, "a", "b")
    with pytest.raises(ValueError, match="direction"):
        paired_difference({"runs": [make_run("a", 8, 0, [1], [1])]}, "a", "a", direction="up")


def test_ranking_by_mean_rank_with_shared_ranks_for_ties():
    runs = [make_run(method, 16, seed, [value], [value]) for method, seed, value in (
        ("a", 0, 0.9), ("b", 0, 0.5), ("c", 0, 0.5),
        ("a", 1, 0.4), ("b", 1, 0.8), ("c", 1, 0.3),
        ("c", 2, 0.99))]                      # seed 2 holds c only: not a shared run
    table = method_ranking({"runs": runs})
    assert [row["method"] for row in table] == ["a", "b", "c"]
    ranks = {row["method"]: row["mean_rank"] for row in table}
    assert ranks == {"a": (1 + 2) / 2, "b": (2.5 + 1) / 2, "c": (2.5 + 3) / 2}
    assert {row["runs"] for row in table} == {2}
    assert table[0]["mean_map"] == pytest.approx((0.9 + 0.4) / 2)


def test_the_score_may_be_any_per_query_value_and_the_other_side_another_file():
    from neurohash_lite.claims import paired_difference
    run = {"status": "done", "n_bits": 16, "seed": 0}
    a = {**run, "method": "a", "ap_per_query": {"mri_to_pet": [0.5, 0.5], "pet_to_mri": [0.5, 0.5]}, "other": [0.9, 0.7]}
    b = {**run, "method": "b", "ap_per_query": {"mri_to_pet": [0.5, 0.5], "pet_to_mri": [0.5, 0.5]}, "other": [0.8, None]}
    results = {"runs": [a, b]}

    def other(run, direction):
        return run["other"]

    assert paired_difference(results, "a", "b").mean == pytest.approx(0.0)
    assert paired_difference(results, "a", "b", score=other).mean == pytest.approx(0.1)  # the None is skipped
    assert paired_difference({"runs": [a]}, "a", "b", other_results={"runs": [b]}, score=other).mean == \
        pytest.approx(0.1)
    with pytest.raises(ValueError, match="score"):
        paired_difference(results, "a", "b", score="auc")


def test_code_length_gain_pairs_the_two_lengths_of_one_seed():
    from neurohash_lite.claims import code_length_gain

    def run(k, seed, ap):
        return {"status": "done", "method": "m", "n_bits": k, "seed": seed,
                "ap_per_query": {"mri_to_pet": ap, "pet_to_mri": ap}}

    results = {"runs": [run(16, 0, [0.5, 0.4]), run(64, 0, [0.6, 0.6]), run(16, 1, [0.5, 0.5]),
                        run(64, 1, [0.4, 0.5]), run(64, 2, [0.9, 0.9])]}   # seed 2 has no 16-bit run
    gain = code_length_gain(results, "m", 64, 16)
    assert gain.per_run == {(64, 0): pytest.approx(0.15), (64, 1): pytest.approx(-0.05)}
    assert gain.mean == pytest.approx(0.05) and gain.wins == 1
