"""Diagnoses from MMSE and CDR with ADNI's ranges (Petersen et al., 2010): hand cases, boundaries, missing scores."""

import csv

import pytest

from neurohash_lite.data.bids import read_participants
from neurohash_lite.data.clinical import ADNI_CRITERIA, diagnosis_from_scores, fill_diagnoses


@pytest.mark.parametrize("mmse, cdr, label", [
    (30, 0, 0), (24, 0, 0),          # NC: MMSE 24-30, CDR 0 (both ends)
    (30, 0.5, 1), (27, 0.5, 1),      # MCI: CDR 0.5, MMSE above AD's 26
    (26, 1, 2), (20, 1, 2),          # AD: CDR 1, MMSE 20-26 (both ends)
    (23, 0.5, 2), (20, 0.5, 2),      # AD: CDR 0.5 below MCI's 24
    (24, 0.5, -1), (26, 0.5, -1),    # the MCI/AD overlap: no label
    (23, 0, -1),                     # CDR 0 with MMSE below NC's range
    (19, 1, -1), (27, 1, -1),        # CDR 1 outside AD's MMSE range
    (22, 2, -1),                     # CDR 2: beyond ADNI's enrolment
])
def test_hand_cases_and_boundaries(mmse, cdr, label):
    labels, reasons = diagnosis_from_scores([mmse], [cdr])
    assert labels.tolist() == [label]
    assert (reasons[0] is None) == (label >= 0)


def test_the_criteria_are_adnis():
    assert ADNI_CRITERIA == {"NC": (24, 30, (0.0,)), "MCI": (24, 30, (0.5,)), "AD": (20, 26, (0.5, 1.0))}


def test_missing_scores_are_reported_not_guessed():
    labels, reasons = diagnosis_from_scores([None, "n/a", "", 28], [0, None, "0", "nan"])
    assert labels.tolist() == [-1, -1, -1, -1]
    assert reasons == ["MMSE missing", "MMSE and CDR missing", "MMSE missing", "CDR missing"]


def test_overlap_reason_names_both_ranges():
    _, reasons = diagnosis_from_scores([25], [0.5])
    assert reasons[0] == "CDR 0.5 with MMSE 25 fits both MCI (MMSE 24-30) and AD (MMSE 20-26)"


@pytest.mark.parametrize("mmse, cdr, message", [
    ([31], [0], r"mmse\[0\]=31 lies outside"), ([28], [0.7], r"cdr\[0\]=0.7 is not a global CDR"),
    ([28, 27], [0], "mmse has 2 values but cdr has 1"),
])
def test_impossible_scores_raise(mmse, cdr, message):
    with pytest.raises(ValueError, match=message):
        diagnosis_from_scores(mmse, cdr)


def _tsv(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerows(rows)
    return path


def test_fill_diagnoses_keeps_derives_and_reports(tmp_path):
    source = _tsv(tmp_path / "participants.tsv", [
        ["participant_id", "diagnosis", "mmse", "cdr"],
        ["sub-01", "CN", "29", "0"],        # kept
        ["sub-02", "n/a", "22", "1"],       # derived AD
        ["sub-03", "", "n/a", "0.5"],       # cannot be labelled: left out
        ["sub-04", "AD", "29", "0"],        # stated kept, scores disagree
    ])
    before = source.read_text()
    report = fill_diagnoses(source, tmp_path / "out.tsv")
    assert source.read_text() == before
    assert report.kept == ["sub-01", "sub-04"] and report.derived == {"sub-02": "AD"}
    assert report.unlabelled == {"sub-03": "MMSE missing"} and report.disagree == {"sub-04": "NC"}
    participants = read_participants(tmp_path / "out.tsv")
    assert participants.participant_ids == ["sub-01", "sub-02", "sub-04"]
    assert participants.labels.tolist() == [0, 2, 2]
    assert not list(tmp_path.glob(".participants.*"))


def test_fill_diagnoses_names_the_file_and_missing_columns(tmp_path):
    source = _tsv(tmp_path / "participants.tsv", [["participant_id", "diagnosis"], ["sub-01", "n/a"]])
    with pytest.raises(ValueError, match=r"participants.tsv: column\(s\) \['mmse', 'cdr'\] missing"):
        fill_diagnoses(source, tmp_path / "out.tsv")
    assert not (tmp_path / "out.tsv").exists()


def test_missing_diagnosis_error_points_to_the_scores(tmp_path):
    source = _tsv(tmp_path / "participants.tsv", [["participant_id", "diagnosis"], ["sub-01", "NC"],
                                                  ["sub-02", "n/a"]])
    with pytest.raises(ValueError, match=r"line 3: the diagnosis of sub-02 is missing.*fill_diagnoses"):
        read_participants(source)
