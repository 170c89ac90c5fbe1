"""Subject-level splits for cross-modal retrieval (DESIGN.md section 3.3).

A split is made over *subjects*, never over images: a subject's MRI and PET
always land on the same side, so a query's own scan in the other modality is
never in the training set. Cross-modal splits are made over the **paired**
subjects (``cohort.paired_labels``); MRI-only subjects are never queries or
database items, but :func:`pretraining_indices` lets single-modality
pretraining use them, together with the paired training subjects.

Two protocols, stratified by class and seeded:

``"ahs"`` (default; after Tao & An, 2021)
    10 % of each class is the query set, the rest the retrieval set
    (database); the database is split 90/10 into train and validation. Query
    and database are disjoint.
``"dcpha"`` (after Wang & Zeng, 2023)
    80/20 train/test; queries and database are both the test set (each test
    subject is a query and also sits in the database, in the other modality).
    There is no validation set.

References
----------
Tao & An (2021), Section 4; Wang & Zeng (2023), "Datasets".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PROTOCOLS", "Splits", "make_splits", "assert_disjoint_subjects", "pretraining_indices"]

PROTOCOLS = ("ahs", "dcpha")


@dataclass(frozen=True)
class Splits:
    """Index arrays into the label array the split was made from (sorted, int64).

    Attributes
    ----------
    protocol : str
        ``"ahs"`` or ``"dcpha"``.
    seed : int
    train, validation, query, database : ndarray of int64
        For ``"ahs"``, ``database`` is ``train`` and ``validation`` together;
        for ``"dcpha"``, ``database`` equals ``query`` and ``validation`` is empty.
    """

    protocol: str
    seed: int
    train: np.ndarray
    validation: np.ndarray
    query: np.ndarray
    database: np.ndarray

    def sizes(self) -> dict[str, int]:
        """Number of subjects in each part."""
        return {name: int(len(getattr(self, name))) for name in ("train", "validation", "query", "database")}


def _check_labels(labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 1D array, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.equal(np.mod(labels, 1), 0)):
            raise ValueError("labels must be integers (0 NC, 1 MCI, 2 AD)")
        labels = labels.astype(np.int64)
    if labels.min() < 0:
        raise ValueError("labels must be non-negative integers")
    return labels


def _check_fraction(name: str, value: float) -> float:
    value = float(value)
    if not 0 <= value < 1:
        raise ValueError(f"{name}={value!r} must lie in [0, 1)")
    return value


def _take_per_class(rng: np.random.Generator, members: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Split one class's (shuffled) members: round(fraction * n), at least 1 and at most n - 1 when n >= 2."""
    n = len(members)
    k = int(round(fraction * n))
    if fraction > 0 and n >= 2:
        k = min(max(k, 1), n - 1)
    shuffled = rng.permutation(members)
    return shuffled[:k], shuffled[k:]


def make_splits(
    labels,
    protocol: str = "ahs",
    seed: int = 0,
    *,
    query_fraction: float = 0.1,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.2,
) -> Splits:
    """Split subjects into train / validation / query / database, stratified by class.

    Parameters
    ----------
    labels : array-like (n,), int
        One label per subject (for cross-modal work, ``cohort.paired_labels``).
    protocol : {"ahs", "dcpha"}
        See the module docstring.
    seed : int
        Identical seeds give identical splits.
    query_fraction : float
        ``"ahs"``: share of each class used as queries (default 0.1).
    validation_fraction : float
        ``"ahs"``: share of each class's database used for validation (default 0.1).
    test_fraction : float
        ``"dcpha"``: share of each class in the test set (default 0.2).

    Returns
    -------
    Splits
        Indices into ``labels``. Each class with at least two subjects gives at
        least one query (``"ahs"``) or test subject (``"dcpha"``).

    Raises
    ------
    ValueError
        For an unknown protocol, labels that are not a 1D integer array, or a
        fraction outside [0, 1).
    """
    labels = _check_labels(labels)
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol={protocol!r} is not a protocol; choose one of {PROTOCOLS}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 3]))
    parts: dict[str, list] = {"train": [], "validation": [], "query": [], "database": []}
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if protocol == "ahs":
            query, database = _take_per_class(rng, members, _check_fraction("query_fraction", query_fraction))
            validation, train = _take_per_class(rng, database, _check_fraction("validation_fraction", validation_fraction))
            parts["query"].append(query)
            parts["database"].append(database)
            parts["validation"].append(validation)
            parts["train"].append(train)
        else:
            test, train = _take_per_class(rng, members, _check_fraction("test_fraction", test_fraction))
            parts["query"].append(test)
            parts["database"].append(test)
            parts["train"].append(train)
    arrays = {name: np.sort(np.concatenate(chunks)).astype(np.int64) if chunks else np.zeros(0, np.int64)
              for name, chunks in parts.items()}
    return Splits(protocol=protocol, seed=int(seed), **arrays)


def assert_disjoint_subjects(splits: Splits, subject_ids=None) -> None:
    """Raise if any subject crosses train, validation and query (or sits twice in one part).

    Parameters
    ----------
    splits : Splits
    subject_ids : array-like of str, optional
        The subject of each index. With it the check is on subjects, so two
        indices holding the same subject (e.g. two sessions) are caught too.

    Raises
    ------
    ValueError
        Naming the two parts and up to five shared subjects. For ``"ahs"``
        query and database must also be disjoint; for ``"dcpha"`` the database
        (the test set) must not meet train or validation.
    """
    def ids(name):
        index = np.asarray(getattr(splits, name), dtype=np.int64)
        if subject_ids is None:
            return [int(i) for i in index]
        subjects = np.asarray(subject_ids)
        if index.size and (index.min() < 0 or index.max() >= len(subjects)):
            raise ValueError(f"splits.{name} holds indices outside subject_ids (length {len(subjects)})")
        return [str(s) for s in subjects[index]]

    parts = {name: ids(name) for name in ("train", "validation", "query", "database")}
    for name, members in parts.items():
        if len(set(members)) != len(members):
            repeated = sorted({m for m in members if members.count(m) > 1})
            raise ValueError(f"subject(s) {repeated[:5]} appear more than once in {name}")
    pairs = [("train", "validation"), ("train", "query"), ("validation", "query")]
    if splits.protocol == "ahs":
        pairs.append(("query", "database"))
    else:
        pairs += [("database", "train"), ("database", "validation")]
    for a, b in pairs:
        shared = sorted(set(parts[a]) & set(parts[b]))
        if shared:
            raise ValueError(f"{len(shared)} subject(s) in both {a} and {b}, e.g. {shared[:5]}")


def pretraining_indices(cohort, splits: Splits) -> np.ndarray:
    """Subjects a single-modality MRI pretraining may use: the paired training subjects and every MRI-only subject.

    Parameters
    ----------
    cohort : Cohort
        The cohort whose paired labels ``splits`` was made from.
    splits : Splits
        Indices into the paired subset (``cohort.paired_labels``).

    Returns
    -------
    ndarray of int64, sorted
        Indices into the cohort's subject arrays (``cohort.mri``,
        ``cohort.labels``). Query and validation subjects are never included.
    """
    paired = cohort.paired_index
    if len(splits.train) and splits.train.max() >= len(paired):
        raise ValueError(
            f"splits.train holds index {int(splits.train.max())} but the cohort has {len(paired)} paired "
            "subjects; make the splits from cohort.paired_labels"
        )
    mri_only = np.flatnonzero(~cohort.has_pet)
    return np.sort(np.concatenate([paired[splits.train], mri_only])).astype(np.int64)
