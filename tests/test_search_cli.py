"""``python -m neurohash_lite.search`` on a tiny BIDS folder: neighbours equal HammingIndex's, clear errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from neurohash_lite.data import load_cohort, make_synthetic_cohort
from neurohash_lite.models import CrossModalHashNet
from neurohash_lite.retrieval import HammingIndex
from neurohash_lite.search import archive_codes, main, save_search_checkpoint, search


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    folder = tmp_path_factory.mktemp("search")
    root = make_synthetic_cohort(folder / "tiny", "tiny", voxel_size_mm=16)
    cohort = load_cohort(root, image_size=32, cache_dir=False)
    torch.manual_seed(0)
    network = CrossModalHashNet(16, in_channels=3, width=0.25)
    checkpoint = save_search_checkpoint(folder / "model.pt", network, cohort)
    return root, checkpoint, cohort


def test_neighbours_equal_hamming_index(archive):
    root, checkpoint, cohort = archive
    query = str(cohort.paired_subject_ids[0])
    result = search(checkpoint, root, query, modality="mri", k=5)
    codes = archive_codes(checkpoint, root)
    q = list(codes["subjects"]).index(query)
    rows = np.flatnonzero(codes["has_pet"])
    rows = rows[rows != q]
    index = HammingIndex(16, backend="numpy")
    index.add(codes["pet"][rows])
    found, distances = index.search(codes["mri"][q:q + 1], k=5)
    assert [n["subject"] for n in result.neighbours] == [str(codes["subjects"][rows[i]]) for i in found[0]]
    assert [n["distance"] for n in result.neighbours] == distances[0].tolist()
    assert query not in [n["subject"] for n in result.neighbours]
    assert search(checkpoint, root, query, k=100, include_self=True).neighbours.__len__() == cohort.n_paired


def test_codes_are_cached_beside_the_archive_and_equal_fresh_ones(archive):
    root, checkpoint, _ = archive
    first = archive_codes(checkpoint, root)
    assert list((root / "derivatives" / "neurohash").glob("codes-*.npz"))
    again = archive_codes(checkpoint, root, cache=False)
    for name in ("mri", "pet", "labels", "has_pet"):
        np.testing.assert_array_equal(first[name], again[name])
    assert set(np.unique(first["mri"])) <= {-1, 1}


def test_cli_prints_and_writes_json(archive, tmp_path, capsys):
    root, checkpoint, cohort = archive
    query = str(cohort.paired_subject_ids[1])
    out = tmp_path / "neighbours.json"
    assert main(["--checkpoint", str(checkpoint), "--archive", str(root), "--query", query.removeprefix("sub-"),
                 "--modality", "pet", "--k", "3", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    payload = json.loads(out.read_text())
    assert payload["query"] == query and payload["modality"] == "pet" and len(payload["neighbours"]) == 3
    assert payload["neighbours"][0]["subject"] in printed


@pytest.mark.parametrize("change, message", [
    ({"--checkpoint": "missing.pt"}, r"--checkpoint .*missing.pt: file not found"),
    ({"--query": "sub-nobody"}, r"--query sub-nobody: no such subject"),
    ({"--archive": "NOT_BIDS"}, r"--archive .* is not a BIDS folder.*participants.tsv not found"),
])
def test_cli_errors_name_the_file_or_subject(archive, tmp_path, capsys, change, message):
    root, checkpoint, cohort = archive
    (tmp_path / "NOT_BIDS").mkdir()
    args = {"--checkpoint": str(checkpoint), "--archive": str(root), "--query": str(cohort.subject_ids[0])}
    for key, value in change.items():
        args[key] = str(tmp_path / value) if key != "--query" else value
    assert main([item for pair in args.items() for item in pair]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    with pytest.raises(ValueError, match=message):
        search(args["--checkpoint"], args["--archive"], args["--query"])


def test_a_file_that_is_not_a_checkpoint(archive, tmp_path):
    root, _, cohort = archive
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(ValueError, match=r"--checkpoint .*bad.pt: not a readable checkpoint"):
        search(bad, root, str(cohort.subject_ids[0]))


def test_module_runs_as_a_command(archive):
    root, checkpoint, cohort = archive
    done = subprocess.run([sys.executable, "-m", "neurohash_lite.search", "--checkpoint", str(checkpoint),
                           "--archive", str(root), "--query", str(cohort.subject_ids[0]), "--k", "2"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "rank" in done.stdout
