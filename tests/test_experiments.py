"""The comparison runner at the smoke tier: it writes a valid JSON, resumes, refuses to overwrite."""

from __future__ import annotations

import copy
import json
import os

import numpy as np
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
        relevant, total = experiments.run_histograms(on_disk, run, "mri_to_pet")
        assert relevant.shape == total.shape == (len(run["ap_per_query"]["mri_to_pet"]), 9)
        radii, precision, recall = experiments.pr_radius_curve(on_disk, run, "mri_to_pet")
        assert len(recall) == 9 and recall[-1] == 1.0
        codes = experiments.run_codes(on_disk, run)
        assert codes["query", "mri"].shape == (len(codes["query", "labels"]), 8)
        assert set(np.unique(codes["database", "pet"])) <= {-1, 1}
    split = on_disk["splits"]["0"]
    assert len(split["query"]["subjects"]) == len(split["query"]["labels"]) == len(split["query"]["severity"])
    assert all(0 <= s <= 1.5 for s in split["database"]["severity"])
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


def test_resume_runs_only_what_is_missing(first_run, monkeypatch, tmp_path):
    out = tmp_path / "more.json"
    out.write_bytes(first_run[0].read_bytes())
    calls = []
    original = experiments._run_one

    def counting(method, n_bits, context):
        calls.append(method)
        return original(method, n_bits, context)

    monkeypatch.setattr(experiments, "_run_one", counting)
    results = compare(CompareConfig(methods=("random", "cvh"), **{**FAST, "bits": (8, 4)}), out, resume=True,
                      verbose=False)
    assert calls == ["random", "cvh"]
    assert [(r["method"], r["n_bits"]) for r in results["runs"][:2]] == [("random", 4), ("cvh", 4)]  # sorted by K
    assert results["config"]["bits"] == [8, 4]
    validate_results(load_results(out, complete=False), complete=False)
    with pytest.raises(ValueError, match="no run for method 'hashnet', K = 4"):
        load_results(out)  # hashnet and dcpha have no 4-bit cell yet


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


def _swap_two_database_codes(results):
    """Codes of two database items of different diagnoses exchanged: the stored APs no longer follow."""
    run = results["runs"][0]  # the random codes: every item has its own code
    codes = experiments.run_codes(results, run)
    labels = codes["database", "labels"]
    i, j = 0, int(np.flatnonzero(labels != labels[0])[0])
    pet = codes["database", "pet"].copy()
    pet[[i, j]] = pet[[j, i]]
    if np.array_equal(pet, codes["database", "pet"]):
        pet[i] = -pet[i]
    run["codes"]["database_pet"] = experiments._encode_codes(pet)


def _doctor_one_ap(results):
    """Change one query's AP and another's in the opposite direction: the mean still holds."""
    run = results["runs"][2]
    values = run["ap_per_query"]["mri_to_pet"]
    i, j = [q for q, v in enumerate(values) if v is not None and 0.01 < v < 0.99][:2]
    values[i] += 0.005
    values[j] -= 0.005


def test_validation_names_the_broken_field(first_run):
    good = load_results(first_run[0])
    cases = [
        (lambda r: r.pop("invocations"), "invocations"),
        (lambda r: r["runs"][0]["map"].update(mri_to_pet=1.5), "map.mri_to_pet"),
        (lambda r: r["runs"][1].update(method="svm"), "unknown method"),
        (lambda r: r["runs"].append(copy.deepcopy(r["runs"][0])), "duplicate run"),
        (lambda r: r["runs"][2]["codes"].pop("database_pet"), "codes must hold"),
        (lambda r: r["runs"][2]["codes"].update(query_mri=r["runs"][2]["codes"]["database_mri"]), "cannot be read"),
        (lambda r: r["splits"]["0"]["query"]["labels"].pop(), "differ in length"),
        (lambda r: r["splits"].pop("0"), "no split stored for seed 0"),
        (_swap_two_database_codes, "its codes give"),
        (lambda r: r["config"].pop("lr"), "'lr'"),
        (lambda r: r["runs"][2]["ap_per_query"]["mri_to_pet"].__setitem__(0, 1.0 - 1e-3
                                                                          - r["runs"][2]["ap_per_query"]["mri_to_pet"][0]),
         "does not average"),
        (_doctor_one_ap, "its codes give"),
        (lambda r: r["runs"].pop(1), "no run for method 'cvh', K = 8, seed 0"),
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
    assert lines[2] == "| Random | n/a | n/a | n/a | 0.40 ± 0.00 | 0.40 ± 0.00 | 0.40 ± 0.00 |"
    assert lines[3] == "| AHS | 0.60 ± 0.10 | 0.30 ± 0.00 | 0.45 ± 0.05 | n/a | n/a | n/a |"


def test_resume_adds_a_new_method_to_the_same_file(first_run, tmp_path):
    out = tmp_path / "grow.json"
    out.write_bytes(first_run[0].read_bytes())
    results = compare(CompareConfig(methods=("random", "dcmh"), **FAST), out, resume=True, verbose=False)
    assert [r["method"] for r in results["runs"]] == ["random", "cvh", "dcmh", "hashnet", "dcpha"]  # table order
    assert results["config"]["methods"] == ["random", "cvh", "dcmh", "hashnet", "dcpha"]
    assert results["invocations"][-1]["ran"] == [["dcmh", 8, 0]]
    validate_results(load_results(out))


def test_rerun_trains_one_method_again_and_keeps_the_others(first_run, tmp_path, monkeypatch):
    out = tmp_path / "rerun.json"
    out.write_bytes(first_run[0].read_bytes())
    before = {r["method"]: r for r in load_results(out)["runs"]}
    calls = []
    original = experiments._run_one

    def counting(method, n_bits, context):
        calls.append(method)
        return original(method, n_bits, context)

    monkeypatch.setattr(experiments, "_run_one", counting)
    results = compare(CompareConfig(methods=METHODS, **FAST), out, resume=True, rerun=["hashnet"], verbose=False)
    assert calls == ["hashnet"]
    after = {r["method"]: r for r in results["runs"]}
    assert after["dcpha"] == before["dcpha"] and after["hashnet"]["finished_at"] >= before["hashnet"]["finished_at"]
    assert after["hashnet"]["map"] == before["hashnet"]["map"]  # the CPU path is deterministic
    assert results["invocations"][-1]["rerun"] == ["hashnet"]
    with pytest.raises(ValueError, match="resume"):
        compare(CompareConfig(methods=METHODS, **FAST), tmp_path / "new.json", rerun=["hashnet"], verbose=False)


def test_a_file_with_a_missing_cell_loads_only_as_partial(first_run, tmp_path):
    results = load_results(first_run[0])
    results["runs"] = [r for r in results["runs"] if r["method"] != "hashnet"]
    path = tmp_path / "partial.json"
    path.write_text(json.dumps(results))
    with pytest.raises(ValueError, match="no run for method 'hashnet', K = 8, seed 0"):
        load_results(path)
    assert len(load_results(path, complete=False)["runs"]) == 3
    assert experiments.main(["validate", "--partial", str(path)]) == 0


def test_dcpha_setting_is_the_papers_split_with_its_weights_and_a_fixed_budget(tmp_path):
    results = compare(CompareConfig(methods=("random", "dcpha", "dpsh"), preset="tiny", protocol="dcpha", **FAST),
                      tmp_path / "dcpha.json", verbose=False)
    sizes = results["config"]["split_sizes"]["0"]
    assert sizes["query"] == sizes["database"] and sizes["validation"] == 0
    assert results["config"]["setting"] == "tiny-dcpha"
    assert results["config"]["selection"] == "fixed budget, last epoch"
    dcpha = next(r for r in results["runs"] if r["method"] == "dcpha")
    assert dcpha["hyperparameters"]["weights_of"] == "adni2" and dcpha["hyperparameters"]["alpha"] == 0.3
    assert dcpha["epochs_run"] == 1 + 1 + 1   # steps 1, 2 and 3, each its whole budget
    # every query sits in the database (the protocol): the database is the query set
    assert len(dcpha["ap_per_query"]["mri_to_pet"]) == sizes["database"]
    split = results["splits"]["0"]
    assert split["query"]["subjects"] == split["database"]["subjects"]


def test_curves_and_ndcg_from_the_stored_codes_equal_the_metrics(first_run):
    from neurohash_lite import metrics
    results = load_results(first_run[0])
    run = next(r for r in results["runs"] if r["method"] == "dcpha")
    codes = experiments.run_codes(results, run)
    query, database = codes["query", "mri"], codes["database", "pet"]
    q_labels, d_labels = codes["query", "labels"], codes["database", "labels"]
    for average in ("micro", "macro"):
        expected = metrics.pr_curve_hamming_radius(query, database, q_labels, d_labels, average=average)
        for got, want in zip(experiments.pr_radius_curve(results, run, "mri_to_pet", average), expected):
            np.testing.assert_allclose(got, want)
    n_db = len(d_labels)
    np.testing.assert_allclose(experiments.precision_at_k_curve(results, run, "mri_to_pet", [1, 5, n_db + 7]),
                               metrics.precision_at_k(query, database, q_labels, d_labels, [1, 5, n_db]))
    assert run["map"]["mri_to_pet"] == pytest.approx(
        metrics.mean_average_precision(query, database, q_labels, d_labels), abs=1e-12)
    relevance = metrics.severity_relevance(q_labels, d_labels, codes["query", "severity"],
                                           codes["database", "severity"])
    np.testing.assert_allclose(experiments.ndcg_per_query(results, run, "mri_to_pet", 5),
                               metrics.ndcg_at_k(query, database, relevance, 5, per_query=True).ndcg)
    within = experiments.ndcg_per_query(results, run, "mri_to_pet", 5, within_class=True)
    q = 0
    same = d_labels == q_labels[q]
    assert within[q] == pytest.approx(metrics.ndcg_at_k(query[:1], database[same], relevance[:1, same],
                                                        min(5, int(same.sum()))))


def test_a_cell_does_not_depend_on_the_other_code_lengths_of_its_invocation(tmp_path):
    alone = compare(CompareConfig(methods=("dcmh",), **FAST), tmp_path / "alone.json", verbose=False)
    beside = compare(CompareConfig(methods=("dcmh",), **{**FAST, "bits": (4, 8)}), tmp_path / "beside.json",
                     verbose=False)
    cell = next(r for r in beside["runs"] if r["n_bits"] == 8)
    assert cell["ap_per_query"] == alone["runs"][0]["ap_per_query"]


def test_reproduction_is_identical_on_the_same_platform_and_catches_a_changed_number(first_run, tmp_path):
    stored = load_results(first_run[0])
    again = experiments.reproduce(stored, ["random", "hashnet"], [8], [0], tmp_path / "again.json")
    rows = experiments.reproduction_report(stored, again)
    assert [row["cell"] for row in rows] == [("random", 8, 0), ("hashnet", 8, 0)]
    assert all(row["identical"] and row["same_platform"] and row["within_tolerance"] for row in rows)
    doctored = copy.deepcopy(stored)
    run = next(r for r in doctored["runs"] if r["method"] == "hashnet")
    run["ap_per_query"]["mri_to_pet"][0] = 1.0 if run["ap_per_query"]["mri_to_pet"][0] != 1.0 else 0.5
    rows = experiments.reproduction_report(doctored, again)
    assert not rows[1]["identical"] and not rows[1]["within_tolerance"]
    # on another platform a difference within the tolerance passes, a larger one does not
    elsewhere = copy.deepcopy(again)
    elsewhere["invocations"][-1]["platform"] = "another-os"
    run = next(r for r in elsewhere["runs"] if r["method"] == "hashnet")
    run["map"]["mri_to_pet"] += 0.01
    row = experiments.reproduction_report(stored, elsewhere)[1]
    assert not row["same_platform"] and row["within_tolerance"]
    run["map"]["mri_to_pet"] += experiments.REPRODUCTION_TOLERANCE
    assert not experiments.reproduction_report(stored, elsewhere)[1]["within_tolerance"]


def test_reproduce_refuses_a_configuration_it_cannot_rebuild(first_run, tmp_path):
    stored = load_results(first_run[0])
    stored["config"]["tier"]["batch_size"] = 7   # not what the smoke tier gives
    with pytest.raises(ValueError, match="tier"):
        experiments.reproduce(stored, ["random"], [8], [0], tmp_path / "x.json")


def test_provenance_names_the_program_not_its_path_on_the_machine(monkeypatch):
    import sys

    from neurohash_lite import experiments

    monkeypatch.setattr(sys, "argv", ["/some/checkout/neurohash_lite/experiments.py", "compare", "--scale", "smoke"])
    assert experiments._command_line() == "python -m neurohash_lite.experiments compare --scale smoke"
