"""Testing a paper's claim on a comparison's results: paired differences with bootstrap intervals.

A claim such as "Method A beats triplet-only hashing" is a statement about a
difference of mAPs. On a test set of a few dozen subjects that difference
moves by a few hundredths from one split to the next, so a table of means
alone cannot settle it. The results file of
:func:`neurohash_lite.experiments.compare` keeps every query's average
precision, in the same query order for every method of a seed, so two
methods can be compared *subject by subject*:

    d_s = AP_A(s) - AP_B(s)        for every test subject s,

and their mAP difference is the mean of the d_s. A *run* is one (K, seed)
pair on which both methods were trained; over several runs the claim's
statistic is the mean over runs of the per-run mean difference,

    D = (1/R) sum_r (1/|S_r|) sum_(s in S_r) d_s.

Its 95 % interval comes from a paired bootstrap: resample the subjects of
every run with replacement (the same resample for both methods, so the pairing
is kept), recompute D, repeat, and take the 2.5 and 97.5 percentiles. It
measures how much D depends on which subjects happened to be the test set;
it does not cover a different training run's luck, which is what the spread
over seeds in the tables shows. The verdict reads the interval: "supported"
when it lies above 0, "contradicted" below 0, "inconclusive" when it holds 0.

"direction" picks the queries: ``"mri_to_pet"``, ``"pet_to_mri"``, or
``"both"`` (a subject's difference is the mean over its two queries, so D is
the difference of the two-direction average mAPs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DIRECTIONS", "PairedDifference", "paired_bootstrap", "paired_difference", "direction_gap",
           "code_length_gain", "method_ranking"]

#: Query sets a difference can be taken over.
DIRECTIONS = ("mri_to_pet", "pet_to_mri", "both")


@dataclass(frozen=True)
class PairedDifference:
    """A mean paired difference over runs and its bootstrap interval.

    Attributes
    ----------
    mean : float
        D, the mean over runs of the mean per-subject difference.
    low, high : float
        Percentile bootstrap interval of D (95 % unless asked otherwise).
    per_run : dict
        ``{(n_bits, seed): mean difference of that run}``.
    wins : int
        Runs whose mean difference is above 0.
    """

    mean: float
    low: float
    high: float
    per_run: dict
    wins: int

    @property
    def runs(self) -> int:
        """Number of (K, seed) runs compared."""
        return len(self.per_run)

    @property
    def verdict(self) -> str:
        """``"supported"`` (interval above 0), ``"contradicted"`` (below 0) or ``"inconclusive"``."""
        if self.low > 0:
            return "supported"
        if self.high < 0:
            return "contradicted"
        return "inconclusive"

    def describe(self, digits: int = 3) -> str:
        """``+0.031 [+0.012, +0.050], higher in 5 of 6 runs (per run +0.031 ± 0.020)``.

        The interval is over test subjects; the count and the per-run mean
        ± standard deviation are over the runs (code lengths and seeds),
        the variation between training runs that the interval leaves out.
        """
        values = np.array(list(self.per_run.values()), dtype=float)
        spread = f" (per run {values.mean():+.{digits}f} ± {values.std():.{digits}f})" if values.size > 1 else ""
        return (f"{self.mean:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}], "
                f"higher in {self.wins} of {self.runs} runs{spread}")


def paired_bootstrap(groups, n_resamples: int = 2000, seed: int = 0, confidence: float = 0.95) -> tuple:
    """Mean over groups of each group's mean, and its percentile bootstrap interval.

    Parameters
    ----------
    groups : sequence of 1-D arrays
        Per-subject differences, one array per run; runs may differ in size.
    n_resamples : int
        Bootstrap resamples.
    seed : int
        Seed of the resampling.
    confidence : float
        Coverage of the interval, in (0, 1).

    Returns
    -------
    (mean, low, high) : tuple of float
        Every group is resampled with replacement on its own, independently
        of the others, in every resample.

    Raises
    ------
    ValueError
        On no groups, an empty or non-finite group, or a bad ``n_resamples``
        or ``confidence``.
    """
    groups = [np.asarray(group, dtype=float) for group in groups]
    if not groups:
        raise ValueError("groups is empty: nothing to compare")
    for i, group in enumerate(groups):
        if group.ndim != 1 or len(group) == 0 or not np.isfinite(group).all():
            raise ValueError(f"groups[{i}] must be a non-empty 1-D array of finite differences")
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    rng = np.random.default_rng(seed)
    resampled = np.zeros(int(n_resamples))
    for group in groups:
        picks = rng.integers(0, len(group), size=(int(n_resamples), len(group)))
        resampled += group[picks].mean(axis=1)
    resampled /= len(groups)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(resampled, [tail, 100 - tail])
    return float(np.mean([group.mean() for group in groups])), float(low), float(high)


def _done_runs(results: dict, method: str) -> dict:
    return {(run["n_bits"], run["seed"]): run for run in results["runs"]
            if run["method"] == method and run["status"] == "done"}


def _per_query(run: dict, direction: str, score) -> list:
    if score == "ap":
        return run["ap_per_query"][direction]
    if callable(score):
        return list(score(run, direction))
    raise ValueError(f"score={score!r} must be 'ap' or a function score(run, direction) -> per-query values")


def _per_subject(run: dict, direction: str, score="ap") -> np.ndarray:
    """A score of one run per subject (AP by default), NaN where a query had nothing to find."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction={direction!r} must be one of {DIRECTIONS}")
    values = {d: np.array([np.nan if v is None else v for v in _per_query(run, d, score)], dtype=float)
              for d in ("mri_to_pet", "pet_to_mri")}
    if direction == "both":
        return (values["mri_to_pet"] + values["pet_to_mri"]) / 2
    return values[direction]


def _compare(pairs: dict, direction_a: str, direction_b: str, n_resamples: int, seed: int,
             score="ap") -> PairedDifference:
    if not pairs:
        raise ValueError("no (K, seed) run holds both sides of the comparison")
    per_run, groups = {}, []
    for key in sorted(pairs):
        run_a, run_b = pairs[key]
        difference = _per_subject(run_a, direction_a, score) - _per_subject(run_b, direction_b, score)
        difference = difference[np.isfinite(difference)]        # subjects skipped by either side
        per_run[key] = float(difference.mean())
        groups.append(difference)
    mean, low, high = paired_bootstrap(groups, n_resamples, seed)
    return PairedDifference(mean=mean, low=low, high=high, per_run=per_run,
                            wins=sum(value > 0 for value in per_run.values()))


def paired_difference(results: dict, method: str, other: str, *, bits=None, direction: str = "both",
                      n_resamples: int = 2000, seed: int = 0, score="ap",
                      other_results: dict | None = None) -> PairedDifference:
    """How much ``method`` beats ``other``: D with its bootstrap interval.

    Parameters
    ----------
    results : dict
        A comparison's results (:func:`neurohash_lite.experiments.load_results`).
    method, other : str
        Method names of the results file.
    bits : sequence of int, optional
        Code lengths to include; default every K both methods ran at.
    direction : {"both", "mri_to_pet", "pet_to_mri"}
    n_resamples, seed : int
        Of the bootstrap.
    score : "ap" or callable
        ``"ap"`` (the stored per-query APs, so D is a difference of mAPs) or
        a function ``score(run, direction)`` giving one value per query in
        the stored query order (NaN or None where undefined), e.g. nDCG
        from :func:`neurohash_lite.experiments.ndcg_per_query`.
    other_results : dict, optional
        Where ``other``'s runs are, when not in ``results`` (e.g. the same
        method's stored and re-trained runs); its query order must be the same.

    Returns
    -------
    PairedDifference
        Positive when ``method`` has the higher score.

    Raises
    ------
    ValueError
        If no (K, seed) run holds both methods, or on an unknown direction.
    """
    runs_a, runs_b = _done_runs(results, method), _done_runs(other_results or results, other)
    pairs = {key: (runs_a[key], runs_b[key]) for key in runs_a.keys() & runs_b.keys()
             if bits is None or key[0] in bits}
    return _compare(pairs, direction, direction, n_resamples, seed, score)


def direction_gap(results: dict, method: str, *, bits=None, n_resamples: int = 2000,
                  seed: int = 0, score="ap") -> PairedDifference:
    """sMRI → PET minus PET → sMRI for one method, subject by subject.

    A subject's MRI is the M→P query and its PET the P→M query, so the two
    directions are paired by subject. Positive when M→P scores higher.
    """
    runs = _done_runs(results, method)
    pairs = {key: (run, run) for key, run in runs.items() if bits is None or key[0] in bits}
    return _compare(pairs, "mri_to_pet", "pet_to_mri", n_resamples, seed, score)


def code_length_gain(results: dict, method: str, longer: int, shorter: int, *, direction: str = "both",
                     n_resamples: int = 2000, seed: int = 0, score="ap") -> PairedDifference:
    """What ``longer`` bits buy ``method`` over ``shorter`` ones, subject by subject.

    The runs of one seed share their query set, so the K = ``longer`` and
    K = ``shorter`` runs of a seed are paired by subject; ``per_run`` is
    keyed ``(longer, seed)``. Positive when the longer code scores higher.
    """
    runs = _done_runs(results, method)
    pairs = {(longer, s): (runs[longer, s], runs[shorter, s]) for (k, s) in runs
             if k == longer and (shorter, s) in runs}
    return _compare(pairs, direction, direction, n_resamples, seed, score)


def method_ranking(results: dict, methods=None, bits=None) -> list[dict]:
    """Methods ordered by their mean rank over the (K, seed) runs all of them finished.

    In every run the methods are ranked by two-direction mAP (1 = best; ties
    share the mean rank); a method's score is its mean rank over runs.

    Returns
    -------
    list of dict
        ``method``, ``mean_rank``, ``mean_map`` (the mean of ``map.mean``
        over the same runs) and ``runs``, best first.
    """
    by_method = {}
    for run in results["runs"]:
        if run["status"] == "done" and (methods is None or run["method"] in methods) and \
                (bits is None or run["n_bits"] in bits):
            by_method.setdefault(run["method"], {})[run["n_bits"], run["seed"]] = run["map"]["mean"]
    if not by_method:
        raise ValueError("no finished run matches the methods and bits asked for")
    common = sorted(set.intersection(*(set(runs) for runs in by_method.values())))
    if not common:
        raise ValueError("the methods share no finished (K, seed) run; rank a subset of them")
    names = sorted(by_method)
    scores = np.array([[by_method[name][key] for name in names] for key in common])    # (runs, methods)
    # rank 1 = highest mAP; ties share the mean of their ranks
    ranks = np.array([[1 + (row > value).sum() + ((row == value).sum() - 1) / 2 for value in row]
                      for row in scores])
    table = [{"method": name, "mean_rank": float(ranks[:, j].mean()), "mean_map": float(scores[:, j].mean()),
              "runs": len(common)} for j, name in enumerate(names)]
    return sorted(table, key=lambda row: (row["mean_rank"], -row["mean_map"]))
