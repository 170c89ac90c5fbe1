"""Every claim of the two papers, tested on the book's committed comparison grids.

Each claim is one row: what the paper says, on which setting the book tests
it, as which paired difference (:mod:`neurohash_lite.claims`), the
difference with its 95 % interval over test subjects, and the verdict. A
claim "X is first" is tested against every implemented rival and holds only
if each difference is supported; the weakest comparison (the lowest lower
bound) is the one reported. A claim whose methods the book does not
implement yet reads "not testable yet"; none is dropped.

Chapter 7 shows the table; the closing page collects it with what each
verdict means for a practitioner.

References
----------
Tao & An (2021), Section 4 and Table I; Wang & Zeng (2023), "Results" and
Tables 2-4 (the percentages of their text are absolute mAP points:
``book/results/README.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .claims import PairedDifference, direction_gap, paired_difference
from .published import published_methods

__all__ = ["ClaimVerdict", "SETTING_OF_TABLE", "evaluate_paper_claims", "claims_table"]

#: Which committed grid tests which printed table.
SETTING_OF_TABLE = {("tao2021", "I"): "adni1-ahs", ("wang2023", "2"): "adni2-dcpha",
                    ("wang2023", "3"): "oasis3-dcpha", ("wang2023", "4"): "adni2-dcpha"}

#: Wang & Zeng's stated leads of DCPHA at 128 bits on ADNI2 (average column), in mAP.
STATED_128_BIT_LEADS = {"dihn": 0.0686, "dpn": 0.0516, "csq": 0.0385}

NOT_TESTABLE = "not testable yet"


@dataclass(frozen=True)
class ClaimVerdict:
    """One claim and what the grids say about it.

    Attributes
    ----------
    claim : str
        The paper's claim, in the book's words.
    source : str
        Where the paper makes it.
    setting : str
        The grid that tests it.
    tested_as : str
        The paired difference computed, or why none could be.
    difference : PairedDifference or None
    verdict : str
        ``supported``, ``contradicted``, ``inconclusive`` or ``not testable yet``.
    note : str
        What else the row needs said (methods missing, a stated margin).
    """

    claim: str
    source: str
    setting: str
    tested_as: str
    difference: PairedDifference | None
    verdict: str
    note: str = ""


def _names():
    from .experiments import METHODS  # the runner's table of methods (imports every method's module)

    return {method: entry.name for method, entry in METHODS.items()}


def _missing(rows, paper, table, implemented) -> list[str]:
    ids = published_methods(rows, paper, table)
    return [name for method, name in zip(ids, published_methods(rows, paper, table, printed=True))
            if method not in implemented]


def _first_of_table(grids, rows, paper, table, own, seed, names, claim, source) -> ClaimVerdict:
    setting = SETTING_OF_TABLE[paper, table]
    results = grids[setting]
    implemented = {run["method"] for run in results["runs"] if run["status"] == "done"}
    rivals = [m for m in published_methods(rows, paper, table) if m in implemented and m != own]
    missing = _missing(rows, paper, table, implemented | {own})
    note = f"not testable yet against {', '.join(missing)}" if missing else ""
    if not rivals:
        return ClaimVerdict(claim, source, setting, "no rival is implemented", None, NOT_TESTABLE, note)
    found = {rival: paired_difference(results, own, rival, seed=seed) for rival in rivals}
    weakest = min(found, key=lambda rival: found[rival].low)
    tested = (f"{names[own]} − {names[weakest]}, the weakest of {len(rivals)} rivals "
              f"({', '.join(names[m] for m in rivals)})")
    return ClaimVerdict(claim, source, setting, tested, found[weakest], found[weakest].verdict, note)


def evaluate_paper_claims(grids: dict, rows: list[dict], *, seed: int = 0) -> list[ClaimVerdict]:
    """Test every claim of both papers on the committed grids.

    Parameters
    ----------
    grids : dict
        ``{"adni1-ahs": results, "adni2-dcpha": results, "oasis3-dcpha": results}``
        (:func:`neurohash_lite.experiments.load_results`).
    rows : list of dict
        The published tables (:func:`neurohash_lite.published.load_published`).
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    list of ClaimVerdict
        In the order of the papers' text.
    """
    names = _names()
    verdicts = [
        _first_of_table(grids, rows, "tao2021", "I", "ahs", seed, names,
                        "AHS beats every baseline of its table", "Tao & An, Table I and §4"),
    ]
    adni1 = grids["adni1-ahs"]
    gap = direction_gap(adni1, "ahs", seed=seed)
    verdicts.append(ClaimVerdict("M→P scores above P→M", "Tao & An, §4 (Table I)", "adni1-ahs",
                                 "AHS, M→P − P→M, subject by subject", gap, gap.verdict))
    difference = paired_difference(adni1, "ahs", "triplet", seed=seed)
    verdicts.append(ClaimVerdict("a triplet loss alone is not enough (AHS beats triplet-only hashing)",
                                 "Tao & An, §1 and §3.3", "adni1-ahs", "AHS − Triplet", difference,
                                 difference.verdict))
    for table, data in (("2", "ADNI2"), ("3", "OASIS-3")):
        verdicts.append(_first_of_table(grids, rows, "wang2023", table, "dcpha", seed, names,
                                        f"DCPHA is first of 15 methods on {data}", f"Wang & Zeng, Table {table}"))
    adni2 = grids["adni2-dcpha"]
    implemented = {run["method"] for run in adni2["runs"] if run["status"] == "done"}
    for rival, margin in STATED_128_BIT_LEADS.items():
        claim = f"at 128 bits DCPHA leads {names.get(rival, rival.upper())} by {100 * margin:.2f} points"
        source = "Wang & Zeng, Results (ADNI2, average column)"
        if rival not in implemented or 128 not in adni2["config"]["bits"]:
            verdicts.append(ClaimVerdict(claim, source, "adni2-dcpha", f"{names.get(rival, rival.upper())} is not "
                                         "implemented yet", None, NOT_TESTABLE))
            continue
        difference = paired_difference(adni2, "dcpha", rival, bits=[128], seed=seed)
        inside = difference.low <= margin <= difference.high
        verdicts.append(ClaimVerdict(claim, source, "adni2-dcpha", f"DCPHA − {names[rival]} at K = 128", difference,
                                     difference.verdict, "the stated margin lies " + ("inside" if inside else "outside")
                                     + " the interval"))
    bits = adni2["config"]["bits"]
    for short, first, second in ((True, "dcha", "dpha"), (False, "dpha", "dcha")):
        chosen = [k for k in bits if (k <= 32) == short]
        if chosen:
            difference = paired_difference(adni2, first, second, bits=chosen, seed=seed)
            verdicts.append(ClaimVerdict(
                f"{names[first]} scores above {names[second]} at {' and '.join(map(str, chosen))} bits",
                "Wang & Zeng, Table 4", "adni2-dcpha", f"{names[first]} − {names[second]}", difference,
                difference.verdict))
    for ablation in ("dcha", "dpha"):
        difference = paired_difference(adni2, "dcpha", ablation, seed=seed)
        verdicts.append(ClaimVerdict(f"both terms are needed: DCPHA scores above {names[ablation]}",
                                     "Wang & Zeng, Table 4", "adni2-dcpha", f"DCPHA − {names[ablation]}", difference,
                                     difference.verdict))
    return verdicts


def claims_table(verdicts: list[ClaimVerdict]) -> str:
    """The verdicts as a markdown table, one claim per row."""
    lines = ["| claim | source | setting | tested as | difference [95 % interval] | verdict |",
             "| --- | --- | --- | --- | --- | --- |"]
    for v in verdicts:
        difference = v.difference.describe() if v.difference is not None else ""
        verdict = f"**{v.verdict}**" + (f"; {v.note}" if v.note else "")
        lines.append(f"| {v.claim} | {v.source} | `{v.setting}` | {v.tested_as} | {difference} | {verdict} |")
    return "\n".join(lines)
