"""The comparison runner at the smoke tier: it writes a valid JSON, resumes, refuses to overwrite."""

from __future__ import annotations

import copy
import json
import os

import pytest

from neurohash_lite import experiments
from neurohash_lite.experiments import CompareConfig, compare, format_table, load_results, validate_results

# the pairwise path (HashNet with its continuation wrapper), DCPHA's three steps, CVH and the floor
METHODS = ("random", "cvh", "hashnet", "dcpha")
FAST = dict(scale="smoke", seeds=(0,), bits=(8,), epochs=1, pretrain_epochs=1, device="cpu")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "results.json"
    config = CompareConfig(methods=METHODS, **FAST)
    results = compare(config, out, verbose=False)
    return out, results


def test_results_json_validates_and_holds_every_run(first_run):
    out, results = first_run
    on_disk = load_results(out)
    assert on_disk["runs"] == json.loads(json.dumps(results["runs"]))
    assert [(r["method"], r["n_bits"], r["seed"]) for r in on_disk["runs"]] == [
        ("random", 8, 0), ("cvh", 8, 0), ("hashnet", 8, 0), ("dcpha", 8, 0)]
    for run in on_disk["runs"]:
        assert run["status"] == "done"
        assert 0 <= run["map"]["mri_to_pet"] <= 1 and 0 <= run["map"]["pet_to_mri"] <= 1
        assert len(run["pr_radius"]["mri_to_pet"]["recall"]) == 9
    hashnet = next(r for r in on_disk["runs"] if r["method"] == "hashnet")
    assert hashnet["hyperparameters"]["continuation_stages"] == [[1, 1.0]]
    assert hashnet["hyperparameters"]["alpha"] == pytest.approx(10 / 8)
    invocation = on_disk["invocations"][0]
    assert invocation["device"] == "cpu" and invocation["packages"]["torch"] != "not installed"
    assert len(invocation["git_commit"]) in (40, len("unknown"))
    assert on_disk["config"]["epochs"] == 1 and on_disk["config"]["tier"]["name"] == "smoke"
    assert "| dcpha | 8 | 1 |" in format_table(on_disk)
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    assert not list(out.parent.glob("*.tmp"))


def test_resume_skips_finished_runs(first_run, monkeypatch):
    out, _ = first_run
    before = load_results(out)

    def must_not_train(method, n_bits, context):
        raise AssertionError(f"{method} at K={n_bits} ran again")

    monkeypatch.setattr(experiments, "_run_one", must_not_train)
    results = compare(CompareConfig(methods=METHODS, **FAST), out,
                      resume=True, verbose=False)
    assert results["runs"] == before["runs"]
    assert results["invocations"][-1]["ran"] == []
    assert len(results["invocations"][-1]["skipped"]) == 4
    assert len(load_results(out)["invocations"]) == 2


def test_resume_runs_only_what_is_missing(first_run, monkeypatch):
    out, _ = first_run
    calls = []
    original = experiments._run_one

    def counting(method, n_bits, context):
        calls.append(method)
        return original(method, n_bits, context)

    monkeypatch.setattr(experiments, "_run_one", counting)
    results = compare(CompareConfig(methods=("random", "cvh"), **{**FAST, "bits": (8, 4)}), out, resume=True,
                      verbose=False)
    assert calls == ["random", "cvh"]
    assert [r["n_bits"] for r in results["runs"][-2:]] == [4, 4]
    assert results["config"]["bits"] == [8, 4]
    validate_results(load_results(out))


def test_existing_file_is_never_overwritten(first_run):
    out, _ = first_run
    before = out.read_bytes()
    with pytest.raises(ValueError, match="--resume"):
        compare(CompareConfig(methods=("random",), **FAST), out, verbose=False)
    with pytest.raises(ValueError, match="epochs"):
        compare(CompareConfig(methods=("random",), **{**FAST, "epochs": 2}), out, resume=True, verbose=False)
    assert out.read_bytes() == before


def test_cvh_with_more_bits_than_directions_is_marked_not_applicable(tmp_path):
    results = compare(CompareConfig(methods=("cvh",), **{**FAST, "bits": (64,)}), tmp_path / "r.json",
                      verbose=False)
    (run,) = results["runs"]
    assert run["status"] == "not_applicable" and "principal components" in run["reason"]
    validate_results(results)


def test_validation_names_the_broken_field(first_run):
    good = load_results(first_run[0])
    cases = [
        (lambda r: r.pop("invocations"), "invocations"),
        (lambda r: r["runs"][0]["map"].update(mri_to_pet=1.5), "map.mri_to_pet"),
        (lambda r: r["runs"][1].update(method="svm"), "unknown method"),
        (lambda r: r["runs"].append(copy.deepcopy(r["runs"][0])), "duplicate run"),
        (lambda r: r["runs"][2]["pr_radius"]["pet_to_mri"]["precision"].pop(), "K \\+ 1"),
        (lambda r: r["config"].pop("lr"), "'lr'"),
        (lambda r: r["runs"][2]["ap_per_query"]["mri_to_pet"].__setitem__(0, 1.0 - 1e-3
                                                                          - r["runs"][2]["ap_per_query"]["mri_to_pet"][0]),
         "does not average"),
        (lambda r: r["runs"][3].pop("ap_per_query"), "ap_per_query"),
    ]
    for breaks, message in cases:
        broken = copy.deepcopy(good)
        breaks(broken)
        with pytest.raises(ValueError, match=message):
            validate_results(broken)


def test_per_query_aps_average_to_the_map_and_pair_across_methods(first_run):
    runs = load_results(first_run[0])["runs"]
    n_queries = {len(run["ap_per_query"]["mri_to_pet"]) for run in runs}
    assert len(n_queries) == 1     # one query set per seed, the same order for every method
    for run in runs:
        for direction in ("mri_to_pet", "pet_to_mri"):
            kept = [ap for ap in run["ap_per_query"][direction] if ap is not None]
            assert sum(kept) / len(kept) == pytest.approx(run["map"][direction], abs=1e-12)


def test_width_override_reaches_every_network_and_guards_resume(tmp_path):
    out = tmp_path / "narrow.json"
    results = compare(CompareConfig(methods=("triplet", "dcpha"), width=0.125, **FAST), out, verbose=False)
    assert results["config"]["tier"]["width"] == 0.125
    assert {run["hyperparameters"]["width"] for run in results["runs"]} == {0.125}
    with pytest.raises(ValueError, match="tier"):
        compare(CompareConfig(methods=("triplet",), **FAST), out, resume=True, verbose=False)
    with pytest.raises(ValueError, match="width"):
        CompareConfig(width=0.0).resolved()


def test_command_line_validate(first_run, capsys):
    assert experiments.main(["validate", str(first_run[0])]) == 0
    assert "valid" in capsys.readouterr().out


def test_config_rejects_unknown_methods():
    with pytest.raises(ValueError, match="methods"):
        CompareConfig(methods=("svm",)).resolved()


def test_seeds_layout_table_by_hand():
    run = {"status": "done", "hyperparameters": {}, "train_seconds": 1.0, "finished_at": ""}
    results = {"runs": [
        {**run, "method": "ahs", "n_bits": 16, "seed": 0, "map": {"mri_to_pet": 0.5, "pet_to_mri": 0.3, "mean": 0.4}},
        {**run, "method": "ahs", "n_bits": 16, "seed": 1, "map": {"mri_to_pet": 0.7, "pet_to_mri": 0.3, "mean": 0.5}},
        {**run, "method": "random", "n_bits": 32, "seed": 0, "map": {"mri_to_pet": 0.4, "pet_to_mri": 0.4, "mean": 0.4}},
    ]}
    lines = experiments.seeds_layout_table(results, digits=2).splitlines()
    assert lines[0] == "| method | 16 M→P | 16 P→M | 16 avg | 32 M→P | 32 P→M | 32 avg |"
    # random first (table order), no 16-bit run; ahs: mean ± population std over its two seeds
    assert lines[2] == "| random | n/a | n/a | n/a | 0.40 ± 0.00 | 0.40 ± 0.00 | 0.40 ± 0.00 |"
    assert lines[3] == "| ahs | 0.60 ± 0.10 | 0.30 ± 0.00 | 0.45 ± 0.05 | n/a | n/a | n/a |"
