"""``experiments compare --bids FOLDER``: the comparison on a reader's own folder."""

import shutil

import pytest

from neurohash_lite.data import make_synthetic_cohort
from neurohash_lite.data.bids import copy_folder, folder_digest
from neurohash_lite.experiments import CompareConfig, compare, load_results, main

FAST = dict(scale="smoke", seeds=(0,), bits=(8,), epochs=1, pretrain_epochs=1, device="cpu")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_synthetic_cohort(tmp_path_factory.mktemp("bids") / "my_scans", "tiny", voxel_size_mm=16)


def test_compare_on_a_folder_writes_a_results_file_that_validates(folder, tmp_path):
    out = tmp_path / "results.json"
    results = compare(CompareConfig(methods=("random", "dpsh"), protocol="dcpha", bids=str(folder), **FAST), out,
                      data_dir=tmp_path / "data", verbose=False)
    stored = load_results(out)  # validates, recomputing every AP from the stored codes
    assert stored["config"]["setting"] == "bids-my_scans-dcpha"
    assert stored["config"]["bids"] == {"folder": "my_scans", "file_list_sha256": folder_digest(folder)}
    assert stored["config"]["tier"]["preset"] is None
    assert {r["method"] for r in results["runs"]} == {"random", "dpsh"}
    # no path, subject data or image leaves the folder except the split's subject ids
    assert str(folder.parent) not in out.read_text()


def test_folder_with_too_few_subjects_of_a_diagnosis_is_refused(folder, tmp_path):
    rows = (folder / "participants.tsv").read_text().splitlines()
    header, body = rows[0], rows[1:]
    column = header.split("\t").index("diagnosis")
    ad = [r for r in body if r.split("\t")[column] == "AD"]
    kept = [r for r in body if r not in ad[2:]]  # two AD subjects left
    participants = tmp_path / "participants.tsv"
    participants.write_text("\n".join([header, *kept]) + "\n")
    small = copy_folder(folder, tmp_path / "small", participants=participants)
    out = tmp_path / "results.json"
    with pytest.raises(ValueError, match=r"small: \d paired subject\(s\) with diagnosis AD, but the 'ahs' split "
                                         r"needs at least 3"):
        compare(CompareConfig(methods=("random",), protocol="ahs", bids=str(small), **FAST), out,
                data_dir=tmp_path / "data", verbose=False)
    assert not out.exists()


def test_cli_refuses_bids_with_a_setting_and_a_missing_folder(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["compare", "--bids", str(tmp_path), "--setting", "adni2-dcpha"])
    with pytest.raises(SystemExit):
        main(["compare", "--bids", str(tmp_path / "nowhere")])
    assert "is not a folder" in capsys.readouterr().err
