"""Subject-level splits: partitions, stratification, determinism, and the disjointness check."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurohash_lite.data.splits import Splits, assert_disjoint_subjects, make_splits, pretraining_indices

label_arrays = st.lists(st.integers(0, 2), min_size=3, max_size=200).map(np.asarray)


@settings(max_examples=60, deadline=None)
@given(labels=label_arrays, seed=st.integers(0, 2**31 - 1))
def test_ahs_partitions_subjects_by_class(labels, seed):
    splits = make_splits(labels, "ahs", seed)
    everything = np.concatenate([splits.train, splits.validation, splits.query])
    np.testing.assert_array_equal(np.sort(everything), np.arange(len(labels)))  # a partition
    np.testing.assert_array_equal(splits.database, np.sort(np.concatenate([splits.train, splits.validation])))
    assert_disjoint_subjects(splits)
    for c in np.unique(labels):
        n = int((labels == c).sum())
        n_query = int((labels[splits.query] == c).sum())
        expected = 0 if n < 2 else min(max(int(round(0.1 * n)), 1), n - 1)
        assert n_query == expected


@settings(max_examples=60, deadline=None)
@given(labels=label_arrays, seed=st.integers(0, 2**31 - 1))
def test_dcpha_queries_and_database_are_the_test_set(labels, seed):
    splits = make_splits(labels, "dcpha", seed)
    np.testing.assert_array_equal(splits.query, splits.database)
    assert len(splits.validation) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([splits.train, splits.query])), np.arange(len(labels)))
    assert_disjoint_subjects(splits)


def test_sizes_on_an_adni2_sized_cohort():
    labels = np.repeat([0, 1, 2], [76, 154, 70])
    ahs = make_splits(labels, "ahs", 0)
    assert ahs.sizes() == {"train": 243, "validation": 27, "query": 30, "database": 270}
    dcpha = make_splits(labels, "dcpha", 0)
    assert dcpha.sizes() == {"train": 240, "validation": 0, "query": 60, "database": 60}


def test_seeded():
    labels = np.repeat([0, 1, 2], 30)
    a, b, c = make_splits(labels, seed=4), make_splits(labels, seed=4), make_splits(labels, seed=5)
    np.testing.assert_array_equal(a.query, b.query)
    np.testing.assert_array_equal(a.train, b.train)
    assert not np.array_equal(a.query, c.query)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"labels": [0, 1, 2], "protocol": "random"}, "protocol"),
        ({"labels": [[0, 1], [1, 2]]}, "1D"),
        ({"labels": []}, "1D"),
        ({"labels": [0.5, 1, 2]}, "integers"),
        ({"labels": [-1, 1, 2]}, "non-negative"),
        ({"labels": [0, 1, 2], "seed": -3}, "seed"),
        ({"labels": [0, 1, 2], "query_fraction": 1.0}, "query_fraction"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_splits(**kwargs)


def _split(train, validation, query, database, protocol="ahs"):
    return Splits(protocol, 0, *(np.asarray(a, dtype=np.int64) for a in (train, validation, query, database)))


@pytest.mark.parametrize(
    "parts, match",
    [
        (([0, 1], [2], [1], [0, 1, 2]), "train and query"),
        (([0, 1], [1], [3], [0, 1]), "train and validation"),
        (([0], [1], [1], [0, 1]), "validation and query"),
        (([0], [1], [2], [0, 1, 2]), "query and database"),
        (([0, 0], [1], [2], [0, 1]), "more than once in train"),
    ],
)
def test_disjointness_check_catches_crossings(parts, match):
    with pytest.raises(ValueError, match=match):
        assert_disjoint_subjects(_split(*parts))


def test_disjointness_is_checked_on_subjects_not_just_indices():
    splits = _split([0, 1], [2], [3], [0, 1, 2])
    assert_disjoint_subjects(splits)
    with pytest.raises(ValueError, match="train and query.*sub-01"):
        assert_disjoint_subjects(splits, ["sub-01", "sub-02", "sub-03", "sub-01"])  # two sessions of sub-01
    with pytest.raises(ValueError, match="outside subject_ids"):
        assert_disjoint_subjects(splits, ["sub-01", "sub-02"])


def test_dcpha_database_must_not_meet_train():
    with pytest.raises(ValueError, match="database and train"):
        assert_disjoint_subjects(_split([0, 1], [], [2], [1, 2], protocol="dcpha"))


class _FakeCohort:
    def __init__(self, has_pet):
        self.has_pet = np.asarray(has_pet)
        self.paired_index = np.flatnonzero(self.has_pet)


def test_pretraining_uses_train_subjects_and_every_mri_only_subject():
    has_pet = np.array([True] * 20 + [False] * 5 + [True] * 10)
    cohort = _FakeCohort(has_pet)
    labels = np.tile([0, 1, 2], 10)
    splits = make_splits(labels, "ahs", 0)
    chosen = pretraining_indices(cohort, splits)
    paired = cohort.paired_index
    assert set(chosen) == set(paired[splits.train]) | set(np.flatnonzero(~has_pet))
    assert not set(chosen) & set(paired[splits.query]) and not set(chosen) & set(paired[splits.validation])
    with pytest.raises(ValueError, match="paired_labels"):
        pretraining_indices(_FakeCohort([True] * 3), splits)
