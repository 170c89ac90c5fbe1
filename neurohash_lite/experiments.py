"""The comparison runner: every method on one split, one budget, one metric.

``python -m neurohash_lite.experiments compare --scale book --seeds 0 1 2 --bits 16 32 64 128``
trains and scores every method of the comparison at every code length K
and seed, and writes one results JSON. For each seed all methods see the
same cohort, the same split (the ``ahs`` protocol: queries against the
retrieval database, DESIGN §3.3) and the same training budget:

- ``pretrain_epochs`` of single-modality cross-entropy pretraining of the
  encoder(s) (shared by all pairwise methods of one seed; DCPHA's own step 1;
  DCPHA's step 2, the decoder on the frozen encoder, gets as many again),
  its seconds are counted in the ``train_seconds`` of every pairwise run
  of that seed (and stored as ``pretrain_seconds_included``),
- then ``epochs`` epochs on the method's own objective (HashNet's spread over
  its continuation stages), Adam at ``lr``, the best validation epoch kept
  (validation queries against the training set, as in Chapter 4).

Methods (:data:`METHODS`): ``random`` (independent fair-coin codes, the
floor), ``cvh`` (:mod:`neurohash_lite.cvh`, no deep net), the pairwise
losses ``triplet``, ``dcmh``, ``dpsh``, ``hashnet``, ``csq`` and ``ahs``
(Method A) on :class:`~neurohash_lite.models.CrossModalHashNet` through
:class:`~neurohash_lite.train.CrossModalObjective`, and ``dcpha`` with its
ablations ``dcha`` (J1 only) and ``dpha`` (J2 only) through
:func:`~neurohash_lite.dcpha_model.train_dcpha`.

The JSON (:func:`validate_results` checks it) holds the configuration, every
hyper-parameter of every run, mAP@ALL in both directions and every query's AP
(for paired comparisons, :mod:`neurohash_lite.claims`), precision@k and
PR-by-radius curves, training time, and the provenance of every invocation
(git commit, device, package versions, wall time). It is rewritten (to a
temporary file, then renamed) after every run, so an interrupted comparison
loses at most one run; ``--resume`` skips the (method, K, seed) runs the file
already holds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neurohash_lite import metrics
from neurohash_lite.cvh import CrossViewHashing
from neurohash_lite.data import ImageDataset, PairedDataset, assert_disjoint_subjects, load_tier_cohort, make_splits
from neurohash_lite.data import pretraining_indices
from neurohash_lite.dcpha_model import DCPHANet, DCPHAObjective, train_dcpha
from neurohash_lite.losses import AHSLoss, ContinuationHashNet, CSQLoss, DCMHLoss, DPSHLoss, HashNetLoss
from neurohash_lite.losses import TripletHashingLoss, hashnet_stages
from neurohash_lite.models import CrossModalHashNet
from neurohash_lite.runtime import environment_report, resolve_tier, seed_everything, select_device
from neurohash_lite.train import CrossModalObjective, TrainConfig, encode, fit

__all__ = ["METHODS", "CompareConfig", "compare", "validate_results", "load_results", "summary_rows",
           "format_table", "seeds_layout_table", "main"]

#: Every method the runner knows, in the order of the tables.
METHODS = ("random", "cvh", "triplet", "dcmh", "dpsh", "hashnet", "csq", "ahs", "dcha", "dpha", "dcpha")

#: The pairwise losses on the two-branch network, with their options.
PAIRWISE_LOSSES = {
    "triplet": (TripletHashingLoss, {}),
    "dcmh": (DCMHLoss, {"gamma": 1.0, "eta": 1.0}),
    "dpsh": (DPSHLoss, {"eta": 0.1}),
    "hashnet": (HashNetLoss, {}),
    "csq": (CSQLoss, {"lambda_q": 1e-4}),
    "ahs": (AHSLoss, {"alpha": 0.1, "lambda_q": 0.1}),
}

#: DCPHA and its ablations as weights of J = alpha J1 + beta J2 + lambda_r R.
DCPHA_OBJECTIVES = {
    "dcpha": {},
    "dcha": {"beta": 0.0},
    "dpha": {"alpha": 0.0},
}

FORMAT = "neurohash-compare"
#: 2 added every query's AP (``ap_per_query``) to each run.
VERSION = 2
#: Configuration fields that must agree for ``--resume`` to add to a file.
SHARED_FIELDS = ("scale", "tier", "epochs", "pretrain_epochs", "lr", "cohort_seed", "protocol", "ks")
DIRECTIONS = ("mri_to_pet", "pet_to_mri")


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
    epochs : int, optional
        Epochs on each method's own objective; default the tier's.
    pretrain_epochs : int, optional
        Single-modality pretraining epochs; default ``max(1, epochs // 5)``;
        0 switches pretraining off (DCPHA then skips its steps 1 and 2).
    width : float, optional
        Width multiplier of every backbone; default the tier's. A smaller
        width is how a chapter fits the whole grid into its time budget.
    lr : float
        Adam's learning rate for every step of every method.
    cohort_seed : int
        Seed of the synthetic cohort (the data), the same for every run.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    ks : tuple of int
        Cut-offs of the stored precision@k curves (capped at the database size).
    """

    scale: str = "book"
    seeds: tuple = (0,)
    bits: tuple | None = None
    methods: tuple = METHODS
    epochs: int | None = None
    pretrain_epochs: int | None = None
    width: float | None = None
    lr: float = 1e-3
    cohort_seed: int = 0
    device: str = "auto"
    ks: tuple = (1, 5, 10, 20, 50, 100)

    def resolved(self) -> "CompareConfig":
        """A copy with every default filled in and every value checked."""
        if self.width is not None and not (math.isfinite(self.width) and self.width > 0):
            raise ValueError(f"width must be a finite number > 0, got {self.width!r}")
        tier = resolve_tier(self.scale, bits=self.bits, epochs=self.epochs, width=self.width)
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise ValueError(f"methods={tuple(self.methods)!r}: choose from {METHODS}")
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
                                   width=tier.width,
                                   methods=tuple(dict.fromkeys(self.methods)), ks=tuple(int(k) for k in self.ks))


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
        "command": " ".join(sys.argv),
    }


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


def write_results(results: dict, path: str | os.PathLike) -> Path:
    """Validate ``results`` and write them to ``path`` atomically (temporary file, then rename)."""
    validate_results(results)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False, encoding="utf-8") as handle:
        json.dump(_json_ready(results), handle, indent=1, allow_nan=False)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(handle.name, 0o666 & ~umask)  # a temporary file is private; the results are not
    os.replace(handle.name, path)
    return path


def load_results(path: str | os.PathLike) -> dict:
    """Read and validate a results JSON."""
    path = Path(path)
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a readable results JSON: {error}") from error
    validate_results(results, name=str(path))
    return results


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate_results(results, name: str = "results") -> None:
    """Check a results object against the format :func:`compare` writes.

    Raises
    ------
    ValueError
        Naming the first field that is missing or wrong.
    """
    _require(isinstance(results, dict), f"{name} must be a JSON object")
    _require(results.get("format") == FORMAT, f"{name}: 'format' must be {FORMAT!r}")
    _require(results.get("version") == VERSION, f"{name}: 'version' must be {VERSION}")
    config = results.get("config")
    _require(isinstance(config, dict), f"{name}: 'config' must be an object")
    for key in SHARED_FIELDS + ("seeds", "bits", "methods"):
        _require(key in config, f"{name}: config lacks {key!r}")
    invocations = results.get("invocations")
    _require(isinstance(invocations, list) and invocations, f"{name}: 'invocations' must be a non-empty list")
    for i, item in enumerate(invocations):
        for key in ("git_commit", "device", "packages", "started_at", "wall_seconds"):
            _require(isinstance(item, dict) and key in item, f"{name}: invocations[{i}] lacks {key!r}")
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
        _require(run["status"] in ("done", "not_applicable"), f"{where}: status must be 'done' or 'not_applicable'")
        _require(isinstance(run["hyperparameters"], dict), f"{where}: hyperparameters must be an object")
        if run["status"] == "not_applicable":
            _require(isinstance(run.get("reason"), str), f"{where}: a run that is not applicable needs a 'reason'")
            continue
        scores = run.get("map")
        _require(isinstance(scores, dict), f"{where} lacks 'map'")
        for direction in DIRECTIONS + ("mean",):
            value = scores.get(direction)
            _require(_is_number(value) and 0.0 <= value <= 1.0, f"{where}: map.{direction} must be in [0, 1]")
        _require(abs(scores["mean"] - (scores["mri_to_pet"] + scores["pet_to_mri"]) / 2) < 1e-9,
                 f"{where}: map.mean is not the mean of both directions")
        per_query = run.get("ap_per_query")
        _require(isinstance(per_query, dict), f"{where} lacks 'ap_per_query'")
        for direction in DIRECTIONS:
            values = per_query.get(direction)
            _require(isinstance(values, list) and values and all(
                v is None or (_is_number(v) and 0.0 <= v <= 1.0) for v in values),
                f"{where}: ap_per_query.{direction} must be a non-empty list of APs in [0, 1] (null if skipped)")
            kept = [v for v in values if v is not None]
            _require(bool(kept) and abs(sum(kept) / len(kept) - scores[direction]) < 1e-9,
                     f"{where}: ap_per_query.{direction} does not average to map.{direction}")
        _require(_is_number(run["train_seconds"]) and run["train_seconds"] >= 0,
                 f"{where}: train_seconds must be a number >= 0")
        curves = run.get("precision_at_k")
        _require(isinstance(curves, dict) and "ks" in curves, f"{where} lacks precision_at_k.ks")
        for direction in DIRECTIONS:
            _require(len(curves.get(direction, [])) == len(curves["ks"]),
                     f"{where}: precision_at_k.{direction} must have one value per k")
            pr = run.get("pr_radius", {}).get(direction, {})
            for part in ("precision", "recall"):
                _require(len(pr.get(part, [])) == run["n_bits"] + 1,
                         f"{where}: pr_radius.{direction}.{part} must have K + 1 values")


# --------------------------------------------------------------------------
# Data of one seed
# --------------------------------------------------------------------------
@dataclass
class SeedData:
    """The split of one seed and everything the methods share on it."""

    seed: int
    train: PairedDataset
    validation: PairedDataset
    query: PairedDataset
    database: PairedDataset
    mri_pretrain: ImageDataset
    pet_pretrain: ImageDataset
    sizes: dict
    pretrained: dict | None = None
    pretrain_seconds: float = 0.0


def _seed_data(cohort, seed: int) -> SeedData:
    splits = make_splits(cohort.paired_labels, protocol="ahs", seed=seed)
    assert_disjoint_subjects(splits, cohort.paired_subject_ids)
    return SeedData(
        seed=seed,
        train=PairedDataset.from_cohort(cohort, splits.train),
        validation=PairedDataset.from_cohort(cohort, splits.validation),
        query=PairedDataset.from_cohort(cohort, splits.query),
        database=PairedDataset.from_cohort(cohort, splits.database),
        mri_pretrain=ImageDataset.from_cohort(cohort, "mri", pretraining_indices(cohort, splits)),
        pet_pretrain=ImageDataset.from_cohort(cohort, "pet", splits.train),
        sizes=splits.sizes(),
    )


class _BranchClassifier(nn.Module):
    """A hash branch's features and a linear head over the diagnoses (pretraining)."""

    def __init__(self, branch: nn.Module, n_classes: int = 3):
        super().__init__()
        self.branch = branch
        self.head = nn.Linear(branch.feature_dim, n_classes)

    def forward(self, x):
        return self.head(self.branch.features(x))


def _classification_objective(model, batch):
    images, labels = batch
    loss = F.cross_entropy(model(images), labels)
    return loss, {"cross_entropy": loss.detach()}


# --------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------
@dataclass
class _Context:
    config: CompareConfig
    tier: object
    device: torch.device
    in_channels: int
    data: SeedData = None
    log: list = field(default_factory=list)


def _train_config(context: _Context, epochs: int, seed: int, patience=True) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=context.tier.batch_size, lr=context.config.lr,
                       device=context.device.type, seed=seed, progress=False,
                       patience=max(2, epochs // 3) if patience else None)


def _network(context: _Context, n_bits: int) -> CrossModalHashNet:
    tier = context.tier
    return CrossModalHashNet(n_bits, in_channels=context.in_channels, spatial_dims=tier.spatial_dims,
                             width=tier.width)


def _pretrained_branches(context: _Context) -> dict:
    """Branch weights after single-modality pretraining, once per seed (the hash layer excluded)."""
    data = context.data
    if data.pretrained is None:
        data.pretrained = {}
        if context.config.pretrain_epochs > 0:
            seed_everything(data.seed)
            template = _network(context, min(context.config.bits))
            config = _train_config(context, context.config.pretrain_epochs, data.seed, patience=False)
            for modality, dataset in (("mri", data.mri_pretrain), ("pet", data.pet_pretrain)):
                branch = getattr(template, f"{modality}_branch")
                result = fit(_BranchClassifier(branch), _classification_objective, dataset, config)
                data.pretrain_seconds += result.seconds
                data.pretrained[modality] = {k: v.detach().clone() for k, v in branch.state_dict().items()
                                             if not k.startswith("hash_layer")}
    return data.pretrained


def _public_settings(module) -> dict:
    return {k: v for k, v in vars(module).items()
            if not k.startswith("_") and k != "training" and isinstance(v, (int, float, str, bool))}


def _run_pairwise(method: str, n_bits: int, context: _Context):
    data, seed, epochs = context.data, context.data.seed, context.config.epochs
    pretrained = _pretrained_branches(context)
    seed_everything(seed)
    network = _network(context, n_bits)
    for modality, state in pretrained.items():
        getattr(network, f"{modality}_branch").load_state_dict(state, strict=False)
    loss_class, options = PAIRWISE_LOSSES[method]
    loss = loss_class(n_bits, **options)
    objective = CrossModalObjective(loss)
    validation = {"val_query": data.validation, "val_database": data.train}
    hyper = {"loss": loss_class.__name__, **_public_settings(loss), "epochs": epochs,
             "pretrain_epochs": context.config.pretrain_epochs, "lr": context.config.lr,
             "batch_size": context.tier.batch_size, "width": context.tier.width,
             "weight_decay": TrainConfig.weight_decay, "pretrain_seconds_included": data.pretrain_seconds}
    seconds, epochs_run = data.pretrain_seconds, 0
    if method == "hashnet":
        model = ContinuationHashNet(network)
        stages = hashnet_stages(epochs)
        for stage_epochs, beta in stages:
            model.beta = beta
            result = fit(model, objective, data.train, _train_config(context, stage_epochs, seed, patience=False),
                         **validation)
            seconds += result.seconds
            epochs_run += len(result.history.epoch)
        hyper["continuation_stages"] = [[e, b] for e, b in stages]
    else:
        model = network
        result = fit(model, objective, data.train, _train_config(context, epochs, seed), **validation)
        seconds += result.seconds
        epochs_run = len(result.history.epoch)
        hyper["patience"] = max(2, epochs // 3)
        if method == "ahs":
            hyper["a_final"] = float(loss.a.detach())
    return model, seconds, epochs_run, hyper


def _run_dcpha(method: str, n_bits: int, context: _Context):
    data, seed, epochs, pretrain = context.data, context.data.seed, context.config.epochs, \
        context.config.pretrain_epochs
    seed_everything(seed)
    tier = context.tier
    model = DCPHANet(n_bits, in_channels=context.in_channels, spatial_dims=tier.spatial_dims, width=tier.width)
    objective = DCPHAObjective(**DCPHA_OBJECTIVES[method])
    step = (lambda n: _train_config(context, n, seed, patience=False)) if pretrain else (lambda n: None)
    training = train_dcpha(model, data.train, objective, pretrain_encoder=step(pretrain),
                           pretrain_decoder=step(pretrain), finetune=_train_config(context, epochs, seed),
                           val_query=data.validation, val_database=data.train)
    hyper = {"objective": "DCPHAObjective", **dataclasses.asdict(objective), "epochs": epochs,
             "pretrain_epochs": pretrain, "lr": context.config.lr, "batch_size": tier.batch_size,
             "width": tier.width, "patience": max(2, epochs // 3), "shared_encoder": model.shared_encoder,
             "weight_decay": TrainConfig.weight_decay}
    epochs_run = sum(len(r.history.epoch) for r in training.steps.values())
    return model, training.seconds, epochs_run, hyper


def _deep_codes(model, data: SeedData, device) -> dict:
    codes = {}
    for part, dataset in (("query", data.query), ("database", data.database)):
        for modality in ("mri", "pet"):
            codes[part, modality], labels = encode(model, dataset, modality, device=device)
            codes[part, "labels"] = labels
    return codes


def _dataset_arrays(dataset: PairedDataset):
    index = dataset.indices
    return dataset.mri[index].numpy(), dataset.pet[index].numpy(), dataset.labels[index].numpy()


def _shallow_codes(method: str, n_bits: int, context: _Context):
    data = context.data
    codes = {}
    q_mri, q_pet, q_labels = _dataset_arrays(data.query)
    d_mri, d_pet, d_labels = _dataset_arrays(data.database)
    codes["query", "labels"], codes["database", "labels"] = q_labels, d_labels
    started = time.perf_counter()
    if method == "random":
        rng = np.random.default_rng([data.seed, n_bits])
        for part, n in (("query", len(q_labels)), ("database", len(d_labels))):
            for modality in ("mri", "pet"):
                codes[part, modality] = np.where(rng.random((n, n_bits)) < 0.5, -1, 1).astype(np.int8)
        hyper = {"distribution": "independent fair bits"}
    else:
        t_mri, t_pet, _ = _dataset_arrays(data.train)
        model = CrossViewHashing(n_bits, seed=data.seed).fit(t_mri, t_pet)
        for part, (mri, pet) in (("query", (q_mri, q_pet)), ("database", (d_mri, d_pet))):
            codes[part, "mri"], codes[part, "pet"] = model.encode(mri, "mri"), model.encode(pet, "pet")
        hyper = {"n_pca": model.n_pca, "n_pca_used": int(model.pca_["mri"].n_components_), "reg": model.reg,
                 "top_correlation": float(model.correlations_[0])}
    return codes, time.perf_counter() - started, 0, hyper


def _scores(codes: dict, ks: tuple) -> dict:
    q_labels, d_labels = codes["query", "labels"], codes["database", "labels"]
    pairs = {"mri_to_pet": (codes["query", "mri"], codes["database", "pet"]),
             "pet_to_mri": (codes["query", "pet"], codes["database", "mri"])}
    ks = sorted({min(k, len(d_labels)) for k in ks})
    out = {"map": {}, "ap_per_query": {}, "precision_at_k": {"ks": ks}, "pr_radius": {}}
    for direction, (query, database) in pairs.items():
        report = metrics.average_precision_per_query(query, database, q_labels, d_labels)
        out["map"][direction] = report.mean_ap
        # per query, in the query set's order (the same for every method of a seed): paired comparisons
        out["ap_per_query"][direction] = [None if skipped else float(ap)
                                          for ap, skipped in zip(report.ap, report.skipped)]
        out["precision_at_k"][direction] = np.asarray(
            metrics.precision_at_k(query, database, q_labels, d_labels, ks), dtype=float).tolist()
        _, precision, recall = metrics.pr_curve_hamming_radius(query, database, q_labels, d_labels)
        out["pr_radius"][direction] = {"precision": np.asarray(precision, dtype=float).tolist(),
                                       "recall": np.asarray(recall, dtype=float).tolist()}
    out["map"]["mean"] = (out["map"]["mri_to_pet"] + out["map"]["pet_to_mri"]) / 2
    return out


def _run_one(method: str, n_bits: int, context: _Context) -> dict:
    """Train (or draw) one method at one K on the context's seed and score it."""
    run = {"method": method, "n_bits": int(n_bits), "seed": int(context.data.seed)}
    try:
        if method in ("random", "cvh"):
            codes, seconds, epochs_run, hyper = _shallow_codes(method, n_bits, context)
        else:
            if method in PAIRWISE_LOSSES:
                model, seconds, epochs_run, hyper = _run_pairwise(method, n_bits, context)
            else:
                model, seconds, epochs_run, hyper = _run_dcpha(method, n_bits, context)
            codes = _deep_codes(model, context.data, context.device)
    except ValueError as error:
        if method != "cvh":
            raise
        # CVH cannot give more bits than canonical directions (a small training set)
        return {**run, "status": "not_applicable", "reason": str(error), "hyperparameters": {},
                "train_seconds": 0.0, "finished_at": _now()}
    return {**run, "status": "done", **_scores(codes, context.config.ks), "train_seconds": float(seconds),
            "epochs_run": int(epochs_run), "hyperparameters": hyper, "finished_at": _now()}


# --------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------
def _config_record(config: CompareConfig, tier) -> dict:
    # the tier's own bits and seeds are replaced by the comparison's (resume may add to them)
    sizes = {k: v for k, v in dataclasses.asdict(tier).items() if k not in ("bits", "seeds")}
    return {"scale": config.scale, "tier": sizes, "seeds": list(config.seeds),
            "bits": list(config.bits), "methods": list(config.methods), "epochs": config.epochs,
            "pretrain_epochs": config.pretrain_epochs, "lr": config.lr, "cohort_seed": config.cohort_seed,
            "protocol": "ahs", "ks": list(config.ks), "metric": "mAP@ALL, ties='expected'"}


def compare(config: CompareConfig, out: str | os.PathLike, *, resume: bool = False, data_dir=None,
            verbose: bool = True) -> dict:
    """Run every (method, K, seed) of ``config`` and write the results JSON to ``out``.

    Parameters
    ----------
    config : CompareConfig
    out : path-like
        The results JSON, rewritten atomically after every run.
    resume : bool
        Keep the runs ``out`` already holds and skip them; ``out`` must have
        been made with the same tier, budget and cohort. Without it an
        existing ``out`` is an error (nothing is overwritten).
    data_dir : path-like, optional
        Where the cohort lives (:func:`neurohash_lite.runtime.data_dir`).
    verbose : bool
        Print one line per run.

    Returns
    -------
    dict
        The results, as written. ``results["invocations"][-1]`` lists the
        runs this call ``ran`` and ``skipped``.
    """
    started, started_at = time.perf_counter(), _now()
    config = config.resolved()
    tier = resolve_tier(config.scale, bits=config.bits, epochs=config.epochs, width=config.width)
    device = select_device(config.device)
    record = _config_record(config, tier)
    out = Path(out)
    if out.exists():
        if not resume:
            raise ValueError(f"{out} exists: pass resume=True (--resume) to add to it, or choose another out")
        results = load_results(out)
        for key in SHARED_FIELDS:
            if results["config"][key] != _json_ready(record[key]):
                raise ValueError(f"{out} was made with {key}={results['config'][key]!r}, this comparison uses "
                                 f"{record[key]!r}: resume needs the same setting")
        for key in ("seeds", "bits", "methods"):
            results["config"][key] = list(dict.fromkeys(results["config"][key] + record[key]))
    else:
        results = {"format": FORMAT, "version": VERSION, "config": record, "invocations": [], "runs": []}
    invocation = {**provenance(device), "started_at": started_at, "wall_seconds": 0.0, "ran": [], "skipped": []}
    results["invocations"].append(invocation)
    done = {(r["method"], r["n_bits"], r["seed"]) for r in results["runs"]}

    cohort = None
    for seed in config.seeds:
        todo = [(m, k) for k in config.bits for m in config.methods if (m, k, seed) not in done]
        invocation["skipped"] += [[m, k, seed] for k in config.bits for m in config.methods if (m, k, seed) in done]
        if not todo:
            continue
        if cohort is None:
            cohort = load_tier_cohort(tier, seed=config.cohort_seed, data_dir=data_dir)
        context = _Context(config, tier, device, int(cohort.mri.shape[1]), _seed_data(cohort, seed))
        results["config"].setdefault("split_sizes", {})[str(seed)] = context.data.sizes
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
    invocation["wall_seconds"] = time.perf_counter() - started
    invocation["finished_at"] = _now()
    write_results(results, out)
    return results


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
        ``train_seconds`` (mean); methods that were not applicable are left out.
    """
    groups = {}
    for run in results["runs"]:
        if run["status"] == "done":
            groups.setdefault((run["method"], run["n_bits"]), []).append(run)
    rows = []
    for (method, n_bits) in sorted(groups, key=lambda key: (METHODS.index(key[0]), key[1])):
        runs = groups[method, n_bits]
        row = {"method": method, "n_bits": n_bits, "n_seeds": len(runs),
               "train_seconds": float(np.mean([r["train_seconds"] for r in runs]))}
        for direction in DIRECTIONS + ("mean",):
            values = np.array([r["map"][direction] for r in runs])
            row[direction] = (float(values.mean()), float(values.std()))
        rows.append(row)
    return rows


def format_table(results: dict) -> str:
    """A markdown table: one row per method and K, mAP mean ± std over seeds."""
    lines = ["| method | K | seeds | M→P | P→M | mean | train s |", "|---|---|---|---|---|---|---|"]
    for row in summary_rows(results):
        cells = [f"{row[d][0]:.3f} ± {row[d][1]:.3f}" for d in DIRECTIONS + ("mean",)]
        lines.append(f"| {row['method']} | {row['n_bits']} | {row['n_seeds']} | " + " | ".join(cells)
                     + f" | {row['train_seconds']:.1f} |")
    return "\n".join(lines)


def seeds_layout_table(results: dict, digits: int = 3) -> str:
    """A markdown table in the layout of the DCPHA paper's Table 2: one row
    per method; for every code length K, the columns M→P, P→M and their
    average. Cells are mAP mean ± std over seeds (population std, so 0 for
    one seed), ``n/a`` where a method did not run or was not applicable."""
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
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
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
    run.add_argument("--seeds", type=int, nargs="+", default=[0])
    run.add_argument("--bits", type=int, nargs="+", default=None, help="default: the tier's")
    run.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    run.add_argument("--epochs", type=int, default=None, help="default: the tier's")
    run.add_argument("--pretrain-epochs", type=int, default=None, help="default: max(1, epochs // 5)")
    run.add_argument("--width", type=float, default=None, help="backbone width multiplier; default: the tier's")
    run.add_argument("--lr", type=float, default=1e-3)
    run.add_argument("--cohort-seed", type=int, default=0)
    run.add_argument("--device", default="auto")
    run.add_argument("--data-dir", default=None)
    run.add_argument("--out", default=None, help="default: results-<scale>.json")
    run.add_argument("--resume", action="store_true", help="skip the runs the results file already holds")
    check = commands.add_parser("validate", help="check a results JSON and print its table")
    check.add_argument("path")
    args = parser.parse_args(argv)
    if args.command == "validate":
        results = load_results(args.path)
        print(f"{args.path}: valid, {len(results['runs'])} runs")
        print(format_table(results))
        print()
        print(seeds_layout_table(results))
        return 0
    config = CompareConfig(scale=args.scale, seeds=tuple(args.seeds), bits=None if args.bits is None else
                           tuple(args.bits), methods=tuple(args.methods), epochs=args.epochs,
                           pretrain_epochs=args.pretrain_epochs, width=args.width, lr=args.lr,
                           cohort_seed=args.cohort_seed, device=args.device)
    out = args.out or f"results-{args.scale}.json"
    results = compare(config, out, resume=args.resume, data_dir=args.data_dir)
    print(format_table(results))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
