"""Diagnoses from clinical scores: MMSE and CDR to NC / MCI / AD with ADNI's criteria.

A ``participants.tsv`` may carry the Mini-Mental State Examination (MMSE,
0-30) and the global Clinical Dementia Rating (CDR: 0, 0.5, 1, 2, 3) instead
of a diagnosis. ADNI enrolled its three groups by these ranges (Petersen et
al., 2010, the ADNI-1 procedures manual; the same ranges are tabulated by
later studies of ADNI's MCI criteria):

========  ===========  =====================================================
group     MMSE         CDR
========  ===========  =====================================================
NC        24-30        0
MCI       24-30        0.5 (memory box at least 0.5)
AD        20-26        0.5 or 1
========  ===========  =====================================================

ADNI also required, for MCI, a subjective memory complaint and an abnormal
Logical Memory II delayed recall, and for AD the NINCDS-ADRDA criteria of
probable AD. With MMSE and CDR alone the ranges overlap: a CDR of 0.5 with
an MMSE of 24, 25 or 26 fits both MCI and AD. :func:`diagnosis_from_scores`
labels only the subjects one range admits, and reports every other subject
with its reason (a missing score, a score outside ADNI's ranges, or the
MCI/AD overlap), rather than guess.

>>> labels, reasons = diagnosis_from_scores([29, 27, 22, 25, None], [0, 0.5, 1, 0.5, 0])
>>> labels.tolist()
[0, 1, 2, -1, -1]
>>> reasons[3]
'CDR 0.5 with MMSE 25 fits both MCI (MMSE 24-30) and AD (MMSE 20-26)'

References
----------
Petersen, R. C. et al. Alzheimer's Disease Neuroimaging Initiative (ADNI):
clinical characterization. Neurology 74 (2010) 201-209.
"""

from __future__ import annotations

import csv
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["ADNI_CRITERIA", "diagnosis_from_scores", "ClinicalReport", "fill_diagnoses"]

#: ADNI's enrolment ranges: group -> (MMSE low, MMSE high, allowed global CDR values).
ADNI_CRITERIA = {
    "NC": (24, 30, (0.0,)),
    "MCI": (24, 30, (0.5,)),
    "AD": (20, 26, (0.5, 1.0)),
}
_LABELS = {"NC": 0, "MCI": 1, "AD": 2}
_CDR_VALUES = (0.0, 0.5, 1.0, 2.0, 3.0)
_MISSING = ("", "n/a", "na", "nan", "none")


def _score(value) -> float:
    if value is None:
        return math.nan
    if isinstance(value, str):
        if value.strip().lower() in _MISSING:
            return math.nan
        try:
            return float(value)
        except ValueError:
            return math.nan
    return float(value)


def _format(value: float) -> str:
    return f"{value:g}"


def diagnosis_from_scores(mmse, cdr) -> tuple[np.ndarray, list[str | None]]:
    """Map MMSE and global CDR to NC (0), MCI (1) or AD (2) with ADNI's ranges.

    Parameters
    ----------
    mmse : sequence of float or None, length n
        Mini-Mental State Examination, 0 to 30 points. None, NaN or an empty
        string means missing.
    cdr : sequence of float or None, length n
        Global Clinical Dementia Rating, one of 0, 0.5, 1, 2, 3.

    Returns
    -------
    labels : ndarray (n,), int64
        0 NC, 1 MCI, 2 AD, and -1 where no label follows from the criteria.
    reasons : list of str or None, length n
        Why a subject got -1 (None for the labelled ones).

    Raises
    ------
    ValueError
        If the two sequences differ in length, an MMSE lies outside 0-30 or a
        CDR is not one of 0, 0.5, 1, 2, 3 (a typo, not a clinical state).

    References
    ----------
    Petersen et al., Neurology 74 (2010) 201-209: ADNI's inclusion ranges.
    """
    mmse = [_score(v) for v in mmse]
    cdr = [_score(v) for v in cdr]
    if len(mmse) != len(cdr):
        raise ValueError(f"mmse has {len(mmse)} values but cdr has {len(cdr)}; one of each per subject")
    labels = np.full(len(mmse), -1, dtype=np.int64)
    reasons: list[str | None] = []
    for i, (m, c) in enumerate(zip(mmse, cdr)):
        if not math.isnan(m) and not 0 <= m <= 30:
            raise ValueError(f"mmse[{i}]={_format(m)} lies outside the MMSE's 0-30 points")
        if not math.isnan(c) and c not in _CDR_VALUES:
            raise ValueError(f"cdr[{i}]={_format(c)} is not a global CDR (0, 0.5, 1, 2 or 3)")
        if math.isnan(m) or math.isnan(c):
            missing = " and ".join(name for name, v in (("MMSE", m), ("CDR", c)) if math.isnan(v))
            reasons.append(f"{missing} missing")
            continue
        fits = [group for group, (low, high, cdrs) in ADNI_CRITERIA.items() if low <= m <= high and c in cdrs]
        if len(fits) == 1:
            labels[i] = _LABELS[fits[0]]
            reasons.append(None)
        elif len(fits) > 1:
            ranges = " and ".join(f"{g} (MMSE {ADNI_CRITERIA[g][0]}-{ADNI_CRITERIA[g][1]})" for g in fits)
            reasons.append(f"CDR {_format(c)} with MMSE {_format(m)} fits both {ranges}")
        else:
            reasons.append(f"CDR {_format(c)} with MMSE {_format(m)} lies outside ADNI's ranges")
    return labels, reasons


@dataclass
class ClinicalReport:
    """What :func:`fill_diagnoses` did.

    Attributes
    ----------
    path : pathlib.Path
        The participants.tsv written.
    derived : dict of str to str
        Subjects whose diagnosis came from their scores, and that diagnosis.
    kept : list of str
        Subjects whose stated diagnosis was kept.
    disagree : dict of str to str
        Subjects whose stated diagnosis differs from the one their scores give
        (the stated one is kept; a clinician's diagnosis uses more than two scores).
    unlabelled : dict of str to str
        Subjects with neither a diagnosis nor scores that give one, and why:
        left out of the file written.
    """

    path: Path
    derived: dict = field(default_factory=dict)
    kept: list = field(default_factory=list)
    disagree: dict = field(default_factory=dict)
    unlabelled: dict = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"{self.path}: {len(self.kept)} diagnoses kept, {len(self.derived)} derived from MMSE and CDR, "
                 f"{len(self.unlabelled)} subject(s) cannot be labelled"]
        lines += [f"  {s}: derived {d}" for s, d in self.derived.items()]
        lines += [f"  {s}: stated diagnosis kept, the scores say {d}" for s, d in self.disagree.items()]
        lines += [f"  {s}: left out ({why})" for s, why in self.unlabelled.items()]
        return "\n".join(lines)


def fill_diagnoses(source, out, *, diagnosis_column: str = "diagnosis", mmse_column: str = "mmse",
                   cdr_column: str = "cdr") -> ClinicalReport:
    """Write a ``participants.tsv`` whose every row has a diagnosis, derived from MMSE and CDR where missing.

    A stated diagnosis is kept; an empty or ``n/a`` one is derived with
    :func:`diagnosis_from_scores`; a subject that gets none is left out of
    the file written and reported.

    Parameters
    ----------
    source : path-like
        The participants.tsv to read.
    out : path-like
        Where to write (may be ``source``); written to a temporary name, then renamed.
    diagnosis_column, mmse_column, cdr_column : str
        Column names (the diagnosis column is added when absent).

    Returns
    -------
    ClinicalReport

    Raises
    ------
    ValueError
        Naming the file, if it is missing, lacks ``participant_id`` or both
        score columns, or holds an impossible score.
    """
    from .bids import DIAGNOSIS_CODES, read_tsv
    from .synthetic import DIAGNOSES

    source, out = Path(source), Path(out)
    if not source.is_file():
        raise ValueError(f"{source}: participants.tsv not found")
    columns, rows = read_tsv(source)
    missing = [c for c in ("participant_id", mmse_column, cdr_column) if c not in columns]
    if missing:
        raise ValueError(f"{source}: column(s) {missing} missing (columns found: {columns}); "
                         "deriving a diagnosis needs participant_id, MMSE and CDR")
    try:
        labels, reasons = diagnosis_from_scores([r[mmse_column] for r in rows], [r[cdr_column] for r in rows])
    except ValueError as error:
        raise ValueError(f"{source}: {error} (row index counts from the first participant)") from None
    if diagnosis_column not in columns:
        columns.append(diagnosis_column)
    report = ClinicalReport(path=out)
    kept_rows = []
    for row, label, reason in zip(rows, labels, reasons):
        subject = row["participant_id"]
        stated = row.get(diagnosis_column, "")
        if stated.lower() not in _MISSING:
            report.kept.append(subject)
            if label >= 0 and DIAGNOSIS_CODES.get(stated.lower()) not in (None, int(label)):
                report.disagree[subject] = DIAGNOSES[label]
            kept_rows.append(row)
        elif label >= 0:
            row[diagnosis_column] = DIAGNOSES[label]
            report.derived[subject] = DIAGNOSES[label]
            kept_rows.append(row)
        else:
            report.unlabelled[subject] = reason
    out.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile("w", dir=out.parent, prefix=".participants.", suffix=".tmp",
                                         delete=False, newline="", encoding="utf-8")
    try:
        with handle:
            writer = csv.DictWriter(handle, fieldnames=columns, delimiter="\t", lineterminator="\n",
                                    extrasaction="ignore")
            writer.writeheader()
            for row in kept_rows:
                writer.writerow({c: row.get(c, "n/a") or "n/a" for c in columns})
        os.chmod(handle.name, 0o644)
        os.replace(handle.name, out)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return report
