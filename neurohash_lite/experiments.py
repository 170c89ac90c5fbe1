"""The comparison runner: every method on one split, one budget, one metric.

``python -m neurohash_lite.experiments compare --setting adni2-dcpha --seeds 0 1 2 --bits 16 32 64 128``
trains and scores every method of the comparison at every code length K
and seed, and writes one results JSON. For each seed all methods see the
same cohort, the same split and the same training budget:

- a **setting** is a cohort and a protocol (DESIGN §3.3): ``adni1-ahs``
  (Tao & An: 10 % of each class queries a retrieval database of the rest),
  ``adni2-dcpha`` and ``oasis3-dcpha`` (Wang & Zeng: 80/20 train/test, the
  test set is both queries and database; DCPHA takes the paper's weights of
  that data set);
- ``pretrain_epochs`` of single-modality cross-entropy pretraining of the
  encoder(s) (shared by all pairwise methods of one seed; DCPHA's own steps
  1 and 2 get as many each), its seconds counted in the ``train_seconds``
  of every pairwise run of that seed;
- then ``epochs`` epochs on the method's own objective (HashNet's spread
  over its continuation stages), Adam at ``lr``, and the last epoch kept:
  a fixed budget, as both papers train, because a best epoch picked on
  some 30 validation subjects is picked by noise. The test subjects are
  never looked at while training.

Methods (:data:`METHODS`): one plain dict from a method's id to its display
name (as the papers print it) and its entry point ``run(context, n_bits) ->
MethodRun`` (:mod:`neurohash_lite.runner`), in the order of the tables.
Adding a method is one line here and its entry point in its own module.

The JSON (:func:`validate_results` checks it) holds the configuration,
every hyper-parameter of every run, mAP@ALL in both directions, every
query's AP, and the ±1 codes themselves (packed, base64) of every query and
database scan in both modalities, with each seed's query and database
subjects, diagnoses and disease severities. Any metric follows from them
exactly: the tie-aware precision@k and PR curves by radius
(:func:`precision_at_k_curve`, :func:`pr_radius_curve`), nDCG with graded
relevance (:func:`ndcg_per_query`), and validation recomputes every stored
AP from the stored codes, so a number edited by hand does not pass.
It also holds training time and the provenance of every invocation (git
commit, device, package versions, wall time). It is rewritten (to a
temporary file, then renamed) after every run, so an interrupted comparison
loses at most one run; ``--resume`` skips the (method, K, seed) cells the
file already holds and accepts new methods, code lengths and seeds;
``--rerun METHOD`` trains that method's cells again (after a change to its
training).
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from neurohash_lite import adsh, daph, dcpha_model, dihn, dscmr, dsdh, fah, metrics, pcdh
from neurohash_lite.data import load_cohort, load_tier_cohort
from neurohash_lite.losses import (AHSLoss, CMHHLoss, CSQLoss, DCMHLoss, DHNLoss, DPNLoss, DPSHLoss, DSHLoss, IDHNLoss,
                                   LCDSHLoss, PGDHLoss, TripletHashingLoss)
from neurohash_lite.retrieval import pack_codes, unpack_codes
from neurohash_lite.shallow import cvh, scm, seph
from neurohash_lite.runner import MethodRun, NotApplicable, RunContext, random_codes, run_hashnet, run_loss, seed_data
from neurohash_lite.runtime import data_dir as data_dir_of
from neurohash_lite.runtime import environment_report, resolve_tier, select_device

__all__ = ["Method", "METHODS", "SETTINGS", "CompareConfig", "compare", "validate_results", "load_results",
           "run_codes", "run_histograms", "precision_at_k_curve", "pr_radius_curve", "ndcg_per_query",
           "reproduce", "reproduction_report", "check_bids_split", "MIN_PER_DIAGNOSIS",
           "same_platform", "summary_rows", "summary_cells", "format_table",
           "seeds_layout_table", "main"]


@dataclass(frozen=True)
class Method:
    """One row of the tables: the name the papers print and the entry point."""

    name: str
    run: Callable[[RunContext, int], MethodRun]


#: Every method the runner knows, in the order of the tables: the floor and
#: the book's own control (random codes, triplet-only hashing), then Tao &
#: An's Table I (ending with their method, AHS), then Wang & Zeng's Table 2
#: (ending with DCPHA, its two ablations of Table 4 just before it).
METHODS = {
    "random": Method("Random", random_codes),
    "triplet": Method("Triplet", partial(run_loss, loss=TripletHashingLoss)),
    # Tao & An, Table I
    "cvh": Method("CVH", cvh.run),
    "seph": Method("SePH", seph.run),
    "scm": Method("SCM", scm.run),
    "pgdh": Method("PGDH", partial(run_loss, loss=PGDHLoss, options={"lam": 1.0, "gamma": 1.0})),
    "dcmh": Method("DCMH", partial(run_loss, loss=DCMHLoss, options={"gamma": 1.0, "eta": 1.0})),
    "cmhh": Method("CMHH", partial(run_loss, loss=CMHHLoss, options={"beta": 0.5, "gamma": 2.0, "lambda_q": 0.1})),
    "ahs": Method("AHS", partial(run_loss, loss=AHSLoss, options={"alpha": 0.1, "lambda_q": 0.1})),
    # Wang & Zeng, Table 2
    "dhn": Method("DHN", partial(run_loss, loss=DHNLoss, options={"lambda_q": 0.2})),
    "dsh": Method("DSH", partial(run_loss, loss=DSHLoss, options={"alpha": 0.01})),
    "dpsh": Method("DPSH", partial(run_loss, loss=DPSHLoss, options={"eta": 0.1})),
    "daph": Method("DAPH", daph.run),
    "hashnet": Method("HashNet", run_hashnet),
    "dsdh": Method("DSDH", dsdh.run),
    "lcdsh": Method("LCDSH", partial(run_loss, loss=LCDSHLoss, options={"lambda_loc": 3.0})),
    "adsh": Method("ADSH", adsh.run),
    "dihn": Method("DIHN", dihn.run),
    "dscmr": Method("DSCMR", dscmr.run),
    "idhn": Method("IDHN", partial(run_loss, loss=IDHNLoss, options={"beta": 5.0, "gamma": 0.1, "alpha": 0.1})),
    "pcdh": Method("PCDH", pcdh.run),
    "csq": Method("CSQ", partial(run_loss, loss=CSQLoss, options={"lambda_q": 1e-4})),
    "dpn": Method("DPN", partial(run_loss, loss=DPNLoss, options={"margin": 1.0})),
    "fah": Method("FAH", fah.run),
    "dcha": Method("DCHA", partial(dcpha_model.run, variant="dcha")),
    "dpha": Method("DPHA", partial(dcpha_model.run, variant="dpha")),
    "dcpha": Method("DCPHA", partial(dcpha_model.run, variant="dcpha")),
}

#: The papers' three settings: (cohort preset, protocol).
SETTINGS = {
    "adni1-ahs": ("adni1", "ahs"),      # Tao & An, Table I
    "adni2-dcpha": ("adni2", "dcpha"),  # Wang & Zeng, Tables 2 and 4
    "oasis3-dcpha": ("oasis3", "dcpha"),  # Wang & Zeng, Table 3
}

FORMAT = "neurohash-compare"
#: 2 added every query's AP; 3 replaced the stored curves by the codes
#: themselves and each seed's subjects, and added the setting.
VERSION = 3
#: Configuration fields that must agree for ``--resume`` to add to a file.
SHARED_FIELDS = ("scale", "tier", "epochs", "pretrain_epochs", "lr", "cohort_seed", "protocol")
DIRECTIONS = ("mri_to_pet", "pet_to_mri")
#: The four code arrays of a run: part and modality.
CODE_ARRAYS = (("query", "mri"), ("query", "pet"), ("database", "mri"), ("database", "pet"))


@dataclass
class CompareConfig:
    """What to compare and with which budget.

    Parameters
    ----------
    scale : {"smoke", "book", "paper"}
        The tier: cohort, input size, backbone width, batch size, default K
        and epochs (DESIGN §2).
    seeds : tuple of int
        One split and one initialisation per seed.
    bits : tuple of int, optional
        Code lengths; default the tier's.
    methods : tuple of str
        A subset of :data:`METHODS`.
    preset : str, optional
        The synthetic cohort (``"adni1"``, ``"adni2"``, ``"oasis3"``,
        ``"tiny"``); default the tier's.
    protocol : {"ahs", "dcpha"}
        The split (DESIGN §3.3).
    epochs : int, optional
        Epochs on each method's own objective; default the tier's.
    pretrain_epochs : int, optional
        Single-modality pretraining epochs; default ``max(1, epochs // 5)``;
        0 switches pretraining off (DCPHA then skips its steps 1 and 2).
    width : float, optional
        Width multiplier of every backbone; default the tier's.
    lr : float
        Adam's learning rate for every step of every method.
    cohort_seed : int
        Seed of the synthetic cohort (the data), the same for every run.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    bids : str, optional
        A BIDS folder (in MNI space, every subject labelled; see
        :mod:`neurohash_lite.data.bids`) to compare on instead of a synthetic
        cohort: the reader's own data. ``preset`` is then unused; the results
        file names the folder and a digest of its file list, never its data.
    """

    scale: str = "book"
    seeds: tuple = (0,)
    bits: tuple | None = None
    methods: tuple = tuple(METHODS)
    preset: str | None = None
    protocol: str = "ahs"
    epochs: int | None = None
    pretrain_epochs: int | None = None
    width: float | None = None
    lr: float = 1e-3
    cohort_seed: int = 0
    device: str = "auto"
    bids: str | None = None

    def tier(self):
        """The tier with this comparison's overrides."""
        return resolve_tier(self.scale, bits=self.bits, epochs=self.epochs, width=self.width, preset=self.preset)

    def resolved(self) -> "CompareConfig":
        """A copy with every default filled in and every value checked."""
        if self.width is not None and not (math.isfinite(self.width) and self.width > 0):
            raise ValueError(f"width must be a finite number > 0, got {self.width!r}")
        tier = self.tier()
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise ValueError(f"methods={tuple(self.methods)!r}: choose from {tuple(METHODS)}")
        if self.protocol not in ("ahs", "dcpha"):
            raise ValueError(f"protocol={self.protocol!r} must be 'ahs' or 'dcpha'")
        if self.bids is not None and not Path(self.bids).is_dir():
            raise ValueError(f"bids={str(self.bids)!r} is not a folder")
        seeds = tuple(int(s) for s in self.seeds)
        if not seeds:
            raise ValueError("seeds must name at least one seed")
        if tier.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {tier.epochs}")
        pretrain = max(1, tier.epochs // 5) if self.pretrain_epochs is None else int(self.pretrain_epochs)
        if pretrain < 0:
            raise ValueError(f"pretrain_epochs must be >= 0, got {pretrain}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr!r}")
        return dataclasses.replace(self, seeds=seeds, bits=tier.bits, epochs=tier.epochs, pretrain_epochs=pretrain,
                                   width=tier.width, preset=tier.preset,
                                   methods=tuple(dict.fromkeys(self.methods)))


# --------------------------------------------------------------------------
# Provenance and the file
# --------------------------------------------------------------------------
def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _git(*args: str) -> str:
    root = Path(__file__).resolve().parents[1]
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def provenance(device: torch.device) -> dict:
    """Where and with what a run was made: git commit, device, versions."""
    report = environment_report(device)
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status == "unknown" else bool(status),
        "device": report.device,
        "gpu": report.gpu,
        "cuda": report.cuda,
        "mixed_precision": report.mixed_precision,
        "cpu_threads": report.cpu_threads,
        "python": report.python,
        "platform": report.platform,
        "packages": dict(report.packages),
        "command": _command_line(),
    }


def _command_line() -> str:
    """The command that ran, its program named as it is invoked
    (``python -m neurohash_lite.experiments``), not by its path on the machine."""
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    if program in ("experiments.py", "__main__.py"):
        program = "python -m neurohash_lite.experiments"
    return " ".join([program, *sys.argv[1:]])


def _json_ready(value):
    """NaN and infinities become None (strict JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    return value


def _dumps(results: dict) -> str:
    """The file's text: the header indented, then one run per line (a new run is a one-line diff)."""
    header = json.dumps({k: v for k, v in results.items() if k != "runs"}, indent=1, allow_nan=False)
    runs = ",\n".join(json.dumps(run, separators=(",", ":"), allow_nan=False) for run in results["runs"])
    return header[:-2] + ',\n "runs": [\n' + runs + "\n ]\n}\n"


def write_results(results: dict, path: str | os.PathLike, *, complete: bool = False) -> Path:
    """Validate ``results`` and write them to ``path`` atomically (temporary file, then rename).

    ``complete=True`` also requires every (method, K, seed) cell of the
    configuration (see :func:`validate_results`).
    """
    results = _json_ready(results)
    validate_results(results, complete=complete)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False, encoding="utf-8") as handle:
        handle.write(_dumps(results))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(handle.name, 0o666 & ~umask)  # a temporary file is private; the results are not
    os.replace(handle.name, path)
    return path


def load_results(path: str | os.PathLike, *, complete: bool = True) -> dict:
    """Read and validate a results JSON.

    Parameters
    ----------
    path : path-like
    complete : bool, default True
        Require every (method, K, seed) cell the configuration names; False
        accepts a comparison still under way (``--resume`` reads it so).
    """
    path = Path(path)
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a readable results JSON: {error}") from error
    validate_results(results, name=str(path), complete=complete)
    return results


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _encode_codes(codes: np.ndarray) -> str:
    return base64.b64encode(pack_codes(codes).tobytes()).decode("ascii")


def _decode_codes(text: str, n_codes: int, n_bits: int) -> np.ndarray:
    packed = np.frombuffer(base64.b64decode(text.encode("ascii"), validate=True), dtype=np.uint8)
    width = (n_bits + 7) // 8
    if packed.size != n_codes * width:
        raise ValueError(f"{packed.size} bytes hold no {n_codes} codes of {n_bits} bits")
    return unpack_codes(packed.reshape(n_codes, width), n_bits)


def run_codes(results: dict, run: dict) -> dict:
    """A run's codes and their subjects' labels and severities, as numpy arrays.

    Returns
    -------
    dict
        ``codes[part, modality]`` (±1 int8, (n, K)) for each of
        :data:`CODE_ARRAYS`; ``codes[part, "labels"]`` (int64) and
        ``codes[part, "severity"]`` (float64, NaN where unknown) for
        ``part`` in ``"query"``, ``"database"``.
    """
    split = results["splits"][str(run["seed"])]
    codes = {}
    for part in ("query", "database"):
        codes[part, "labels"] = np.asarray(split[part]["labels"], dtype=np.int64)
        codes[part, "severity"] = np.array([np.nan if v is None else v for v in split[part]["severity"]], dtype=float)
    for part, modality in CODE_ARRAYS:
        codes[part, modality] = _decode_codes(run["codes"][f"{part}_{modality}"], len(codes[part, "labels"]),
                                              run["n_bits"])
    return codes


def _direction(codes: dict, direction: str):
    query_modality, database_modality = ("mri", "pet") if direction == "mri_to_pet" else ("pet", "mri")
    return codes["query", query_modality], codes["database", database_modality]


def run_histograms(results: dict, run: dict, direction: str) -> tuple[np.ndarray, np.ndarray]:
    """A run's per-query histograms of one direction (:func:`neurohash_lite.metrics.hamming_histograms`).

    Returns
    -------
    relevant, total : ndarray, shape (Q, K + 1), int64
        Relevant and all database items at each Hamming distance of each query.
    """
    codes = run_codes(results, run)
    query, database = _direction(codes, direction)
    return metrics.hamming_histograms(query, database, codes["query", "labels"], codes["database", "labels"])


def precision_at_k_curve(results: dict, run: dict, direction: str, ks) -> np.ndarray:
    """Mean precision@k over the run's queries, ties at their expectation
    (:func:`neurohash_lite.metrics.precision_at_k`), for each k in ``ks``
    (capped at the database size)."""
    relevant, total = run_histograms(results, run, direction)
    n_db = int(total[0].sum())
    ks = [min(int(k), n_db) for k in ks]
    return np.array([(metrics.expected_relevant_in_top_k(relevant, total, k) / k).mean() for k in ks])


def pr_radius_curve(results: dict, run: dict, direction: str, average: str = "micro"):
    """Precision and recall of hash lookup at every radius r = 0..K
    (:func:`neurohash_lite.metrics.pr_curve_hamming_radius`)."""
    relevant, total = run_histograms(results, run, direction)
    return metrics.pr_from_histograms(relevant, total, average=average)


def ndcg_per_query(results: dict, run: dict, direction: str, k: int, *, within_class: bool = False) -> np.ndarray:
    """Every query's nDCG@k with graded relevance from disease severity
    (:func:`neurohash_lite.metrics.severity_relevance`), ties at their expectation.

    Parameters
    ----------
    results, run : dict
    direction : {"mri_to_pet", "pet_to_mri"}
    k : int
        Cut-off (capped at the ranked list's length).
    within_class : bool, default False
        Rank only the database items of the query's own diagnosis, so that
        the score measures the order *inside* the class (by severity) and
        nothing else; by default the whole database is ranked and another
        diagnosis has relevance 0.

    Returns
    -------
    ndarray, shape (Q,), float64
        NaN for a query with nothing relevant, or where severity is unknown.
    """
    codes = run_codes(results, run)
    query, database = _direction(codes, direction)
    q_labels, d_labels = codes["query", "labels"], codes["database", "labels"]
    q_severity, d_severity = codes["query", "severity"], codes["database", "severity"]
    if not (np.isfinite(q_severity).all() and np.isfinite(d_severity).all()):
        return np.full(len(q_labels), np.nan)
    relevance = metrics.severity_relevance(q_labels, d_labels, q_severity, d_severity)
    if not within_class:
        return metrics.ndcg_at_k(query, database, relevance, min(k, len(d_labels)), per_query=True).ndcg
    scores = np.full(len(q_labels), np.nan)
    for q, label in enumerate(q_labels):
        same = d_labels == label
        if same.any():
            scores[q] = metrics.ndcg_at_k(query[q:q + 1], database[same], relevance[q:q + 1, same],
                                          min(k, int(same.sum())), per_query=True).ndcg[0]
    return scores


def expected_cells(results: dict) -> list[tuple]:
    """Every (method, K, seed) cell the configuration names, in table order."""
    config = results["config"]
    return [(m, k, s) for s in config["seeds"] for k in config["bits"] for m in config["methods"]]


def validate_results(results, name: str = "results", *, complete: bool = True) -> None:
    """Check a results object against the format :func:`compare` writes.

    Every stored AP is recomputed from the stored codes, so a number edited
    by hand (or by a bug) does not pass.

    Parameters
    ----------
    results : dict
    name : str
        How errors name the file.
    complete : bool, default True
        Also require a run for every (method, K, seed) of ``config``.

    Raises
    ------
    ValueError
        Naming the first field that is missing or wrong, or the first
        missing cell.
    """
    _require(isinstance(results, dict), f"{name} must be a JSON object")
    _require(results.get("format") == FORMAT, f"{name}: 'format' must be {FORMAT!r}")
    _require(results.get("version") == VERSION, f"{name}: 'version' must be {VERSION}")
    config = results.get("config")
    _require(isinstance(config, dict), f"{name}: 'config' must be an object")
    for key in SHARED_FIELDS + ("seeds", "bits", "methods", "setting"):
        _require(key in config, f"{name}: config lacks {key!r}")
    invocations = results.get("invocations")
    _require(isinstance(invocations, list) and invocations, f"{name}: 'invocations' must be a non-empty list")
    for i, item in enumerate(invocations):
        for key in ("git_commit", "device", "platform", "packages", "started_at", "wall_seconds"):
            _require(isinstance(item, dict) and key in item, f"{name}: invocations[{i}] lacks {key!r}")
    _validate_splits(results, name)
    runs = results.get("runs")
    _require(isinstance(runs, list), f"{name}: 'runs' must be a list")
    seen = set()
    for i, run in enumerate(runs):
        where = f"{name}: runs[{i}]"
        _require(isinstance(run, dict), f"{where} must be an object")
        for key in ("method", "n_bits", "seed", "status", "hyperparameters", "train_seconds", "finished_at"):
            _require(key in run, f"{where} lacks {key!r}")
        _require(run["method"] in METHODS, f"{where}: unknown method {run['method']!r}")
        _require(isinstance(run["n_bits"], int) and run["n_bits"] >= 1, f"{where}: n_bits must be a positive int")
        _require(isinstance(run["seed"], int), f"{where}: seed must be an int")
        key = (run["method"], run["n_bits"], run["seed"])
        _require(key not in seen, f"{where}: duplicate run {key}")
        seen.add(key)
        where = f"{name}: run {key}"
        _require(run["status"] in ("done", "not_applicable"), f"{where}: status must be 'done' or 'not_applicable'")
        _require(isinstance(run["hyperparameters"], dict), f"{where}: hyperparameters must be an object")
        if run["status"] == "not_applicable":
            _require(isinstance(run.get("reason"), str), f"{where}: a run that is not applicable needs a 'reason'")
            continue
        _require(_is_number(run["train_seconds"]) and run["train_seconds"] >= 0,
                 f"{where}: train_seconds must be a number >= 0")
        _require(str(run["seed"]) in results["splits"], f"{where}: no split stored for seed {run['seed']}")
        _validate_scores(results, run, where)
    if complete:
        for cell in expected_cells(results):
            _require(cell in seen, f"{name}: no run for method {cell[0]!r}, K = {cell[1]}, seed {cell[2]} "
                                   "(a cell of the configuration): finish it with --resume")


def _validate_scores(results: dict, run: dict, where: str) -> None:
    scores = run.get("map")
    _require(isinstance(scores, dict), f"{where} lacks 'map'")
    for direction in DIRECTIONS + ("mean",):
        value = scores.get(direction)
        _require(_is_number(value) and 0.0 <= value <= 1.0, f"{where}: map.{direction} must be in [0, 1]")
    _require(abs(scores["mean"] - (scores["mri_to_pet"] + scores["pet_to_mri"]) / 2) < 1e-9,
             f"{where}: map.mean is not the mean of both directions")
    per_query, stored_codes = run.get("ap_per_query"), run.get("codes")
    _require(isinstance(per_query, dict), f"{where} lacks 'ap_per_query'")
    _require(isinstance(stored_codes, dict) and all(isinstance(stored_codes.get(f"{p}_{m}"), str)
                                                    for p, m in CODE_ARRAYS),
             f"{where}: codes must hold {', '.join(f'{p}_{m}' for p, m in CODE_ARRAYS)} (base64)")
    try:
        codes = run_codes(results, run)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{where}: the codes cannot be read with the split of seed {run['seed']}: {error}") from None
    for direction in DIRECTIONS:
        values = per_query.get(direction)
        _require(isinstance(values, list) and len(values) == len(codes["query", "labels"]) and all(
            v is None or (_is_number(v) and 0.0 <= v <= 1.0) for v in values),
            f"{where}: ap_per_query.{direction} must hold one AP in [0, 1] (null if skipped) per query")
        kept = [v for v in values if v is not None]
        _require(bool(kept) and abs(sum(kept) / len(kept) - scores[direction]) < 1e-9,
                 f"{where}: ap_per_query.{direction} does not average to map.{direction}")
        query, database = _direction(codes, direction)
        relevant, total = metrics.hamming_histograms(query, database, codes["query", "labels"],
                                                     codes["database", "labels"])
        recomputed = metrics.expected_average_precision(relevant, total)
        for q, (stored, again) in enumerate(zip(values, recomputed)):
            _require((stored is None) == bool(np.isnan(again)) and (stored is None or abs(stored - again) < 1e-9),
                     f"{where}: ap_per_query.{direction}[{q}] = {stored} but its codes give {again:.12g}")


def _validate_splits(results: dict, name: str) -> None:
    splits = results.get("splits")
    _require(isinstance(splits, dict), f"{name}: 'splits' must be an object (one entry per seed)")
    for seed, split in splits.items():
        for part in ("query", "database"):
            entry = split.get(part) if isinstance(split, dict) else None
            _require(isinstance(entry, dict) and all(isinstance(entry.get(key), list)
                                                     for key in ("subjects", "labels", "severity")),
                     f"{name}: splits.{seed}.{part} must hold subjects, labels and severity")
            _require(len(entry["subjects"]) == len(entry["labels"]) == len(entry["severity"]) > 0,
                     f"{name}: splits.{seed}.{part}: subjects, labels and severity differ in length")


# --------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------
def _scores(codes: dict) -> dict:
    q_labels, d_labels = codes["query", "labels"], codes["database", "labels"]
    out = {"map": {}, "ap_per_query": {}}
    for direction in DIRECTIONS:
        query, database = _direction(codes, direction)
        relevant, total = metrics.hamming_histograms(query, database, q_labels, d_labels)
        ap = metrics.expected_average_precision(relevant, total)
        kept = ap[np.isfinite(ap)]
        out["map"][direction] = float(kept.mean()) if kept.size else float("nan")
        # per query, in the query set's order (the same for every method of a seed): paired comparisons
        out["ap_per_query"][direction] = [None if np.isnan(v) else float(v) for v in ap]
    out["map"]["mean"] = (out["map"]["mri_to_pet"] + out["map"]["pet_to_mri"]) / 2
    out["codes"] = {f"{part}_{modality}": _encode_codes(codes[part, modality]) for part, modality in CODE_ARRAYS}
    return out


def _run_one(method: str, n_bits: int, context: RunContext) -> dict:
    """Train (or fit, or draw) one method at one K on the context's seed and score it."""
    run = {"method": method, "n_bits": int(n_bits), "seed": int(context.data.seed)}
    try:
        result = METHODS[method].run(context, n_bits)
    except NotApplicable as reason:
        return {**run, "status": "not_applicable", "reason": str(reason), "hyperparameters": {},
                "train_seconds": 0.0, "finished_at": _now()}
    scores = _scores(result.codes)
    return {**run, "status": "done", **scores, "train_seconds": float(result.seconds),
            "epochs_run": int(result.epochs_run), "hyperparameters": result.hyperparameters, "finished_at": _now()}


# --------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------
def _split_record(data) -> dict:
    """The query and database subjects of a seed, with the diagnoses and severities metrics need."""
    record = {}
    for part, dataset, subjects, severity in (
            ("query", data.query, data.query_subjects, data.query_severity),
            ("database", data.database, data.database_subjects, data.database_severity)):
        record[part] = {"subjects": [str(s) for s in subjects],
                        "labels": dataset.labels[dataset.indices].tolist(),
                        "severity": [round(float(v), 12) if np.isfinite(v) else None for v in severity]}
    return record


def _setting_name(preset: str, protocol: str, bids=None) -> str:
    return f"bids-{Path(bids).resolve().name}-{protocol}" if bids is not None else f"{preset}-{protocol}"


#: Paired subjects each diagnosis needs under a protocol's split: ``ahs``
#: one query, one validation and one training subject; ``dcpha`` one test
#: and one training subject.
MIN_PER_DIAGNOSIS = {"ahs": 3, "dcpha": 2}


def check_bids_split(labels, protocol: str, folder: str = "the folder") -> None:
    """Refuse a folder whose paired subjects are too few per diagnosis for the protocol's split.

    Parameters
    ----------
    labels : array-like (n,), int
        Diagnoses of the paired subjects (0 NC, 1 MCI, 2 AD).
    protocol : {"ahs", "dcpha"}
    folder : str
        How errors name the folder.

    Raises
    ------
    ValueError
        Naming the diagnosis (or saying that fewer than two are present).
    """
    from neurohash_lite.data import DIAGNOSES

    labels = np.asarray(labels, dtype=np.int64)
    need = MIN_PER_DIAGNOSIS[protocol]
    present = np.unique(labels)
    if len(present) < 2:
        raise ValueError(f"{folder}: its paired subjects hold {len(present)} diagnosis; retrieval by diagnosis "
                         "needs at least two")
    for c in present:
        n = int((labels == c).sum())
        if n < need:
            raise ValueError(f"{folder}: {n} paired subject(s) with diagnosis {DIAGNOSES[c]}, but the "
                             f"{protocol!r} split needs at least {need} per diagnosis")


def _config_record(config: CompareConfig, tier) -> dict:
    # the tier's own bits and seeds are replaced by the comparison's (resume may add to them)
    sizes = {k: v for k, v in dataclasses.asdict(tier).items() if k not in ("bits", "seeds")}
    if config.bids is not None:
        from neurohash_lite.data.bids import folder_digest

        folder = Path(config.bids).resolve()
        sizes["preset"] = None
        data = {"bids": {"folder": folder.name, "file_list_sha256": folder_digest(folder)}}
    else:
        data = {}
    return {**data, "scale": config.scale, "setting": _setting_name(config.preset, config.protocol, config.bids),
            "tier": sizes,
            "seeds": list(config.seeds), "bits": list(config.bits), "methods": list(config.methods),
            "epochs": config.epochs, "pretrain_epochs": config.pretrain_epochs, "lr": config.lr,
            "cohort_seed": config.cohort_seed, "protocol": config.protocol,
            "selection": "fixed budget, last epoch", "metric": "mAP@ALL, ties='expected'"}


def compare(config: CompareConfig, out: str | os.PathLike, *, resume: bool = False, rerun=(), data_dir=None,
            verbose: bool = True) -> dict:
    """Run every (method, K, seed) of ``config`` and write the results JSON to ``out``.

    Parameters
    ----------
    config : CompareConfig
    out : path-like
        The results JSON, rewritten atomically after every run.
    resume : bool
        Keep the runs ``out`` already holds and skip them; ``out`` must have
        been made with the same tier, budget, protocol and cohort. New
        methods, code lengths and seeds are added to its configuration.
        Without it an existing ``out`` is an error (nothing is overwritten).
    rerun : sequence of str
        Methods whose runs in ``out`` are dropped and trained again (needs
        ``resume``): after a change to one method's training.
    data_dir : path-like, optional
        Where the cohort lives (:func:`neurohash_lite.runtime.data_dir`).
    verbose : bool
        Print one line per run.

    Returns
    -------
    dict
        The results, as written. ``results["invocations"][-1]`` lists the
        runs this call ``ran`` and ``skipped``, and the methods it was told
        to ``rerun``.
    """
    started, started_at = time.perf_counter(), _now()
    config = config.resolved()
    tier = config.tier()
    rerun = list(dict.fromkeys(rerun))
    unknown = [m for m in rerun if m not in METHODS]
    if unknown:
        raise ValueError(f"rerun={unknown!r}: choose from {tuple(METHODS)}")
    if rerun and not resume:
        raise ValueError("rerun needs resume=True (--resume): it re-trains methods of an existing file")
    device = select_device(config.device)
    record = _config_record(config, tier)
    out = Path(out)
    if out.exists():
        if not resume:
            raise ValueError(f"{out} exists: pass resume=True (--resume) to add to it, or choose another out")
        results = load_results(out, complete=False)
        for key in SHARED_FIELDS + (("bids",) if "bids" in record or "bids" in results["config"] else ()):
            if results["config"].get(key) != _json_ready(record.get(key)):
                raise ValueError(f"{out} was made with {key}={results['config'][key]!r}, this comparison uses "
                                 f"{record[key]!r}: resume needs the same setting")
        for key in ("seeds", "bits"):
            results["config"][key] = list(dict.fromkeys(results["config"][key] + record[key]))
        # methods in table order, whichever invocation added them
        known = set(results["config"]["methods"]) | set(record["methods"])
        results["config"]["methods"] = [m for m in METHODS if m in known]
        results["runs"] = [r for r in results["runs"] if r["method"] not in rerun]
    else:
        results = {"format": FORMAT, "version": VERSION, "config": record, "splits": {}, "invocations": [],
                   "runs": []}
    invocation = {**provenance(device), "started_at": started_at, "wall_seconds": 0.0, "rerun": rerun, "ran": [],
                  "skipped": []}
    results["invocations"].append(invocation)
    done = {(r["method"], r["n_bits"], r["seed"]) for r in results["runs"]}

    cohort = None
    if config.bids is not None:
        # load and check the reader's folder before the first run, so a bad folder writes nothing
        cohort = load_cohort(config.bids, tier.spatial_dims, tier.image_size, tier.n_slices, tier.voxel_size_mm,
                             cache_dir=data_dir_of(data_dir) / "cache")
        check_bids_split(cohort.paired_labels, config.protocol, str(config.bids))
    for seed in config.seeds:
        todo = [(m, k) for k in config.bits for m in config.methods if (m, k, seed) not in done]
        invocation["skipped"] += [[m, k, seed] for k in config.bits for m in config.methods if (m, k, seed) in done]
        if not todo:
            continue
        if cohort is None:
            cohort = load_tier_cohort(tier, seed=config.cohort_seed, data_dir=data_dir)
        context = RunContext(config, tier, device, int(cohort.mri.shape[1]),
                             seed_data(cohort, seed, protocol=config.protocol))
        results["config"].setdefault("split_sizes", {})[str(seed)] = context.data.sizes
        results["splits"][str(seed)] = _split_record(context.data)
        for method, n_bits in todo:
            run = _json_ready(_run_one(method, n_bits, context))
            results["runs"].append(run)
            invocation["ran"].append([method, n_bits, seed])
            invocation["wall_seconds"] = time.perf_counter() - started
            invocation["finished_at"] = _now()
            write_results(results, out)
            if verbose:
                score = run["map"] if run["status"] == "done" else None
                text = (f"mAP M→P {score['mri_to_pet']:.3f}  P→M {score['pet_to_mri']:.3f}  "
                        f"train {run['train_seconds']:.1f} s" if score else f"not applicable: {run['reason']}")
                print(f"seed {seed}  K = {n_bits:>3}  {method:<8} {text}", flush=True)
    results["runs"].sort(key=lambda r: (r["seed"], r["n_bits"], list(METHODS).index(r["method"])))
    invocation["wall_seconds"] = time.perf_counter() - started
    invocation["finished_at"] = _now()
    write_results(results, out)
    return results


# --------------------------------------------------------------------------
# Reproducing stored cells
# --------------------------------------------------------------------------
#: How far a re-trained cell's mAP (either direction) may lie from the stored
#: one when the platform differs; on the platform the file was made on the
#: CPU path is deterministic and the two must be identical.
REPRODUCTION_TOLERANCE = 0.05
#: What must agree for two CPU runs to be expected identical.
PLATFORM_FIELDS = ("device", "platform", "python", "cpu_threads")
PLATFORM_PACKAGES = ("torch", "numpy", "scipy", "scikit-learn")


def cell_provenance(results: dict, cell: tuple) -> dict:
    """The invocation (provenance record) that ran a (method, K, seed) cell."""
    for invocation in reversed(results["invocations"]):
        if list(cell) in invocation.get("ran", []):
            return invocation
    raise ValueError(f"no invocation of this file ran {cell}")


def same_platform(first: dict, second: dict) -> bool:
    """Whether two provenance records name the same platform: the CPU, the same
    operating system, Python, thread count and numerical packages."""
    return (first.get("device") == second.get("device") == "cpu"
            and all(first.get(key) == second.get(key) for key in PLATFORM_FIELDS)
            and all(first["packages"].get(name) == second["packages"].get(name) for name in PLATFORM_PACKAGES))


def reproduce(results: dict, methods, bits, seeds, out: str | os.PathLike, *, data_dir=None,
              device: str = "cpu", verbose: bool = False) -> dict:
    """Train some cells of a stored comparison again, with its stored configuration.

    Parameters
    ----------
    results : dict
        A results file (:func:`load_results`).
    methods, bits, seeds : sequence
        The cells to re-train: every (method, K, seed) of their product.
    out : path-like
        A new results file for the re-trained cells (must not exist).
    data_dir : path-like, optional
    device : str, default "cpu"
        The device of the re-training (the stored file says its own).
    verbose : bool

    Returns
    -------
    dict
        The new results (same configuration as the stored file's, fewer cells).
    """
    stored = results["config"]
    if "bids" in stored:
        raise ValueError(f"these results were made on the BIDS folder {stored['bids']['folder']!r}: re-run "
                         "compare --bids on that folder to reproduce them")
    config = CompareConfig(scale=stored["scale"], seeds=tuple(seeds), bits=tuple(bits), methods=tuple(methods),
                           preset=stored["tier"]["preset"], protocol=stored["protocol"], epochs=stored["epochs"],
                           pretrain_epochs=stored["pretrain_epochs"], width=stored["tier"]["width"],
                           lr=stored["lr"], cohort_seed=stored["cohort_seed"], device=device).resolved()
    record = _json_ready(_config_record(config, config.tier()))
    differ = [key for key in SHARED_FIELDS if record[key] != stored[key]]
    if differ:
        raise ValueError(f"cannot rebuild the stored configuration: {', '.join(differ)} differ")
    return compare(config, out, data_dir=data_dir, verbose=verbose)


def reproduction_report(stored: dict, again: dict) -> list[dict]:
    """Each re-trained cell against the stored one.

    Returns
    -------
    list of dict
        ``cell``, ``stored`` and ``again`` (mAP per direction), ``largest_difference``,
        ``identical`` (every per-query AP equal), ``same_platform`` and
        ``within_tolerance`` (identical on the same platform, else within
        :data:`REPRODUCTION_TOLERANCE`).
    """
    by_cell = {(r["method"], r["n_bits"], r["seed"]): r for r in stored["runs"]}
    now = again["invocations"][-1]
    rows = []
    for run in again["runs"]:
        cell = (run["method"], run["n_bits"], run["seed"])
        if cell not in by_cell:
            raise ValueError(f"the stored file has no cell {cell}")
        old = by_cell[cell]
        if run["status"] != "done" or old["status"] != "done":
            same = run["status"] == old["status"]
            rows.append({"cell": cell, "stored": None, "again": None, "largest_difference": 0.0, "identical": same,
                         "same_platform": True, "within_tolerance": same})
            continue
        platform = same_platform(cell_provenance(stored, cell), now)
        largest = max(abs(run["map"][d] - old["map"][d]) for d in DIRECTIONS)
        identical = run["ap_per_query"] == old["ap_per_query"]
        rows.append({"cell": cell, "stored": {d: old["map"][d] for d in DIRECTIONS},
                     "again": {d: run["map"][d] for d in DIRECTIONS}, "largest_difference": largest,
                     "identical": identical, "same_platform": platform,
                     "within_tolerance": identical if platform else largest <= REPRODUCTION_TOLERANCE})
    return rows


# --------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------
def summary_rows(results: dict) -> list[dict]:
    """Mean and std over seeds of mAP per (method, K), in table order.

    Returns
    -------
    list of dict
        Keys ``method``, ``n_bits``, ``n_seeds``, ``mri_to_pet``,
        ``pet_to_mri``, ``mean`` (each a ``(mean, std)`` pair) and
        ``train_seconds`` (the median over seeds, which a run slowed by other
        work on the machine moves less than the mean); methods that were not
        applicable are left out.
    """
    groups = {}
    for run in results["runs"]:
        if run["status"] == "done":
            groups.setdefault((run["method"], run["n_bits"]), []).append(run)
    rows = []
    for (method, n_bits) in sorted(groups, key=lambda key: (list(METHODS).index(key[0]), key[1])):
        runs = groups[method, n_bits]
        row = {"method": method, "n_bits": n_bits, "n_seeds": len(runs),
               "train_seconds": float(np.median([r["train_seconds"] for r in runs]))}
        for direction in DIRECTIONS + ("mean",):
            values = np.array([r["map"][direction] for r in runs])
            row[direction] = (float(values.mean()), float(values.std()))
        rows.append(row)
    return rows


def summary_cells(results: dict) -> dict:
    """``{(method, K, direction): (mean, std)}`` over seeds, ``direction`` also ``"mean"``
    (the two directions' average), as :func:`neurohash_lite.published.side_by_side_table` takes it.

    The std is NaN where a single seed ran: one run has no spread to show
    (a printed "± 0.000" would claim one)."""
    return {(row["method"], row["n_bits"], direction): (row[direction][0], row[direction][1] if row["n_seeds"] > 1
                                                         else float("nan"))
            for row in summary_rows(results) for direction in DIRECTIONS + ("mean",)}


def format_table(results: dict) -> str:
    """A markdown table: one row per method and K, mAP mean ± std over seeds."""
    lines = ["| method | K | seeds | M→P | P→M | mean | train s (median) |", "|---|---|---|---|---|---|---|"]
    for row in summary_rows(results):
        cells = [f"{row[d][0]:.3f} ± {row[d][1]:.3f}" for d in DIRECTIONS + ("mean",)]
        lines.append(f"| {row['method']} | {row['n_bits']} | {row['n_seeds']} | " + " | ".join(cells)
                     + f" | {row['train_seconds']:.1f} |")
    return "\n".join(lines)


def seeds_layout_table(results: dict, digits: int = 3) -> str:
    """A markdown table in the layout of the DCPHA paper's Table 2: one row
    per method; for every code length K, the columns M→P, P→M and their
    average. Cells are mAP mean ± std over seeds (population std, so 0 for
    one seed), ``n/a`` where a method did not run or was not applicable.
    Methods are named as the papers print them (:data:`METHODS`)."""
    rows = {(row["method"], row["n_bits"]): row for row in summary_rows(results)}
    bits = sorted({k for _, k in rows})
    methods = [m for m in METHODS if any((m, k) in rows for k in bits)]
    names = {"mri_to_pet": "M→P", "pet_to_mri": "P→M", "mean": "avg"}
    header = "| method | " + " | ".join(f"{k} {names[d]}" for k in bits for d in names) + " |"
    lines = [header, "|---" * (1 + len(names) * len(bits)) + "|"]
    for method in methods:
        cells = []
        for k in bits:
            row = rows.get((method, k))
            for direction in names:
                cells.append("n/a" if row is None else f"{row[direction][0]:.{digits}f} ± {row[direction][1]:.{digits}f}")
        lines.append(f"| {METHODS[method].name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m neurohash_lite.experiments",
                                     description="Compare every hashing method on one split and budget.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("compare", help="train and score every (method, K, seed)")
    run.add_argument("--scale", default="book", choices=("smoke", "book", "paper"))
    run.add_argument("--setting", default=None, choices=tuple(SETTINGS),
                     help="a cohort and protocol of the papers (sets --preset and --protocol)")
    run.add_argument("--preset", default=None, help="synthetic cohort; default: the tier's")
    run.add_argument("--bids", default=None, metavar="FOLDER",
                     help="compare on this BIDS folder (MNI space, every subject labelled) instead of a synthetic "
                          "cohort; the results name the folder and a digest of its file list")
    run.add_argument("--protocol", default="ahs", choices=("ahs", "dcpha"))
    run.add_argument("--seeds", type=int, nargs="+", default=[0])
    run.add_argument("--bits", type=int, nargs="+", default=None, help="default: the tier's")
    run.add_argument("--methods", nargs="+", default=list(METHODS), choices=tuple(METHODS))
    run.add_argument("--epochs", type=int, default=None, help="default: the tier's")
    run.add_argument("--pretrain-epochs", type=int, default=None, help="default: max(1, epochs // 5)")
    run.add_argument("--width", type=float, default=None, help="backbone width multiplier; default: the tier's")
    run.add_argument("--lr", type=float, default=1e-3)
    run.add_argument("--cohort-seed", type=int, default=0)
    run.add_argument("--device", default="auto")
    run.add_argument("--data-dir", default=None)
    run.add_argument("--out", default=None, help="default: results-<scale>-<setting>.json")
    run.add_argument("--resume", action="store_true",
                     help="skip the cells the results file already holds; add new methods, K and seeds")
    run.add_argument("--rerun", nargs="+", default=[], choices=tuple(METHODS), metavar="METHOD",
                     help="with --resume: drop these methods' runs and train them again")
    check = commands.add_parser("validate", help="check a results JSON and print its table")
    check.add_argument("path")
    check.add_argument("--partial", action="store_true", help="accept missing (method, K, seed) cells")
    args = parser.parse_args(argv)
    if args.command == "validate":
        results = load_results(args.path, complete=not args.partial)
        print(f"{args.path}: valid, {len(results['runs'])} runs")
        print(format_table(results))
        print()
        print(seeds_layout_table(results))
        return 0
    if args.bids and (args.setting or args.preset):
        parser.error("--bids replaces --setting and --preset: the folder is the data")
    preset, protocol = SETTINGS[args.setting] if args.setting else (args.preset, args.protocol)
    config = CompareConfig(scale=args.scale, seeds=tuple(args.seeds), bits=None if args.bits is None else
                           tuple(args.bits), methods=tuple(args.methods), preset=preset, protocol=protocol,
                           epochs=args.epochs, pretrain_epochs=args.pretrain_epochs, width=args.width, lr=args.lr,
                           cohort_seed=args.cohort_seed, device=args.device, bids=args.bids)
    try:
        resolved = config.resolved()
    except ValueError as error:
        parser.error(str(error))
    out = args.out or f"results-{args.scale}-{_setting_name(resolved.preset, resolved.protocol, resolved.bids)}.json"
    results = compare(config, out, resume=args.resume, rerun=args.rerun, data_dir=args.data_dir)
    print(format_table(results))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
