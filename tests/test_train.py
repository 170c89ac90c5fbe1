"""The shared training and evaluation path, on a tiny linear cross-modal model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from neurohash_lite import metrics
from neurohash_lite.train import (
    frozen_modules,
    recalibrate_batch_norm,
    History,
    TrainConfig,
    autocast_dtype,
    encode,
    evaluate,
    fit,
    load_checkpoint,
    save_checkpoint,
)
from neurohash_lite.runtime import seed_everything

N_FEATURES, N_BITS = 12, 8


class TinyCrossModal(nn.Module):
    """One linear hash layer per modality."""

    def __init__(self):
        super().__init__()
        self.mri = nn.Linear(N_FEATURES, N_BITS)
        self.pet = nn.Linear(N_FEATURES, N_BITS)

    def encode(self, x, modality):
        return torch.tanh(getattr(self, modality)(x.flatten(1)))


class PairwiseObjective(nn.Module):
    """A DPSH-style likelihood with a learnable scale, so the objective has a parameter."""

    def __init__(self):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(()))

    def forward(self, model, batch):
        mri, pet, labels = batch
        u_x, u_y = model.encode(mri, "mri"), model.encode(pet, "pet")
        s = (labels[:, None] == labels[None, :]).float()
        theta = self.log_scale.exp() * (u_x @ u_y.T) / 2
        loss = (nn.functional.softplus(theta) - s * theta).mean()
        return loss, {"likelihood": loss.detach(), "scale": self.log_scale.exp().detach()}


def paired_dataset(n, seed, noise=0.6):
    """Three classes, each with a prototype seen through two different linear 'modalities'."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    prototypes = np.random.default_rng(99).normal(size=(3, N_FEATURES))
    mixing = np.random.default_rng(98).normal(size=(N_FEATURES, N_FEATURES))
    mri = prototypes[labels] + noise * rng.normal(size=(n, N_FEATURES))
    pet = prototypes[labels] @ mixing / 3 + noise * rng.normal(size=(n, N_FEATURES))
    as_tensor = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    return TensorDataset(as_tensor(mri), as_tensor(pet), torch.as_tensor(labels))


@pytest.fixture(scope="module")
def data():
    return paired_dataset(96, 0), paired_dataset(24, 1), paired_dataset(48, 2)


def config(**changes):
    base = dict(epochs=15, batch_size=16, lr=3e-2, device="cpu", seed=0, progress=False, patience=None)
    base.update(changes)
    return TrainConfig(**base)


def test_fit_lowers_the_loss_and_beats_chance(data):
    train, query, database = data
    untrained = evaluate(TinyCrossModal(), query, database)
    result = fit(TinyCrossModal(), PairwiseObjective(), train, config(), val_query=query, val_database=database)
    history = result.history
    assert history.loss[-1] < history.loss[0]
    assert history.epoch == list(range(1, 16))
    assert set(history.parts) == {"likelihood", "scale"}
    trained = evaluate(result.model, query, database)
    assert trained["mean"] > untrained["mean"] + 0.2
    assert trained["mean"] > 0.7
    assert result.device == torch.device("cpu") and result.precision == "float32"


def test_best_epoch_weights_are_restored(data):
    train, query, database = data
    result = fit(TinyCrossModal(), PairwiseObjective(), train, config(lr=0.3), val_query=query, val_database=database)
    best = result.history.best_epoch
    scores = evaluate(result.model, query, database)
    assert scores["mri_to_pet"] == pytest.approx(result.history.val_map_mri_to_pet[best - 1])
    assert scores["pet_to_mri"] == pytest.approx(result.history.val_map_pet_to_mri[best - 1])
    assert max(result.history.val_map) == pytest.approx(scores["mean"])


def test_early_stopping_stops(data):
    train, query, database = data
    # A zero learning rate never improves on the first epoch.
    result = fit(TinyCrossModal(), PairwiseObjective(), train, config(lr=0.0, patience=2, epochs=20),
                 val_query=query, val_database=database)
    assert result.history.stopped_early
    assert len(result.history.epoch) == 3 and result.history.best_epoch == 1


def test_same_seed_same_weights_on_cpu(data):
    train = data[0]

    def run(seed):
        seed_everything(seed)  # the initial weights, as a chapter does before building its model
        return fit(TinyCrossModal(), PairwiseObjective(), train, config(epochs=3, seed=seed)).model

    first, second = run(0), run(0)
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
    assert not torch.equal(first.mri.weight, run(1).mri.weight)


def test_batch_order_follows_the_seed(data):
    # Same initial weights, different seeds: only the batch order differs.
    start = TinyCrossModal()
    runs = []
    for seed in (0, 0, 1):
        model = TinyCrossModal()
        model.load_state_dict(start.state_dict())
        runs.append(fit(model, PairwiseObjective(), data[0], config(epochs=2, seed=seed)).model.mri.weight)
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_trainable_subset_leaves_the_rest_frozen(data):
    model = TinyCrossModal()
    before = model.pet.weight.detach().clone()
    fit(model, PairwiseObjective(), data[0], config(epochs=2), trainable=list(model.mri.parameters()))
    assert torch.equal(model.pet.weight, before)


class NormedCrossModal(nn.Module):
    """A hidden layer with batch norm and dropout per modality, then the hash layer."""

    def __init__(self):
        super().__init__()
        for modality in ("mri", "pet"):
            setattr(self, modality, nn.Sequential(nn.Linear(N_FEATURES, 16), nn.BatchNorm1d(16), nn.ReLU(),
                                                  nn.Dropout(0.5), nn.Linear(16, N_BITS)))

    def encode(self, x, modality):
        return torch.tanh(getattr(self, modality)(x.flatten(1)))


def test_frozen_modules_are_the_largest_untrained_subtrees():
    model = NormedCrossModal()
    assert frozen_modules(model) == []
    assert frozen_modules(model, list(model.mri.parameters())) == [model.pet]
    assert frozen_modules(model, list(model.mri[4].parameters())) == [model.mri[0], model.mri[1], model.pet]
    for p in model.parameters():
        p.requires_grad_(False)
    assert frozen_modules(model) == [model]


def test_frozen_modules_stay_in_eval_mode_and_keep_their_statistics(data):
    model = NormedCrossModal()
    seen = []

    class Watch(PairwiseObjective):
        def forward(self, model, batch):
            seen.append((model.training, model.mri.training, model.pet.training, model.pet[3].training))
            return super().forward(model, batch)

    norm = model.pet[1]
    statistics = (norm.running_mean.clone(), norm.running_var.clone(), int(norm.num_batches_tracked))
    fit(model, Watch(), data[0], config(epochs=2), trainable=list(model.mri.parameters()))
    training_calls = [s for s in seen if s[1]]
    assert training_calls and all(s == (True, True, False, False) for s in training_calls)
    assert torch.equal(norm.running_mean, statistics[0]) and torch.equal(norm.running_var, statistics[1])
    assert int(norm.num_batches_tracked) == statistics[2]


def test_recalibration_gives_the_statistics_of_the_final_weights_without_dropout(data):
    train = data[0]
    model = NormedCrossModal()
    fit(model, PairwiseObjective(), train, config(epochs=2, recalibrate=False))
    first = model.mri[0]
    with torch.no_grad():
        hidden = first(torch.stack([train[i][0] for i in range(len(train))]))
    assert not torch.allclose(model.mri[1].running_mean, hidden.mean(0), atol=1e-4)  # lagging
    weights = {name: p.detach().clone() for name, p in model.named_parameters()}
    assert recalibrate_batch_norm(model, PairwiseObjective(), train, batch_size=len(train)) == 2
    assert torch.allclose(model.mri[1].running_mean, hidden.mean(0), atol=1e-5)
    assert torch.allclose(model.mri[1].running_var, hidden.var(0), rtol=1e-4)
    assert model.mri[1].momentum == 0.1 and model.training is False
    for name, p in model.named_parameters():
        assert torch.equal(p, weights[name]), name
    # a second pass changes nothing (no dropout noise, no lag)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    recalibrate_batch_norm(model, PairwiseObjective(), train, batch_size=len(train))
    for key, value in model.state_dict().items():
        if "num_batches" not in key:
            assert torch.allclose(value.float(), state[key].float(), atol=1e-6), key


def test_fit_keeps_the_statistics_of_the_epoch_it_keeps(data):
    train, query, database = data
    for validation in ({}, {"val_query": query, "val_database": database}):
        model = fit(NormedCrossModal(), PairwiseObjective(), train, config(epochs=3, batch_size=len(train)),
                    **validation).model
        state = {k: v.clone() for k, v in model.state_dict().items()}
        recalibrate_batch_norm(model, PairwiseObjective(), train, batch_size=len(train))
        for key, value in model.state_dict().items():
            if "running" in key:
                assert torch.allclose(value, state[key], atol=1e-5), (validation.keys(), key)


def test_the_objective_may_give_its_parameters_their_own_learning_rate(data):
    class Fast(PairwiseObjective):
        parameter_lr = 0.5

    moved = {}
    for objective in (PairwiseObjective(), Fast()):
        fit(TinyCrossModal(), objective, data[0], config(epochs=1, lr=1e-3))
        moved[type(objective).__name__] = abs(float(objective.log_scale.detach()))
    steps = len(data[0]) // 16
    assert moved["PairwiseObjective"] <= steps * 1e-3 * 1.01
    assert moved["Fast"] > 50 * moved["PairwiseObjective"]


def test_encode_gives_pm1_codes_with_sign_zero_positive():
    class Zero(nn.Module):
        def __init__(self):
            super().__init__()
            self.dummy = nn.Parameter(torch.zeros(()))

        def encode(self, x, modality):
            return torch.zeros(len(x), 5) * self.dummy

    dataset = TensorDataset(torch.randn(7, 3), torch.randn(7, 3), torch.arange(7))
    codes, labels = encode(Zero(), dataset, "pet", batch_size=3)
    assert codes.dtype == np.int8 and codes.shape == (7, 5)
    assert (codes == 1).all()
    assert labels.tolist() == list(range(7))


def test_encode_reads_single_modality_datasets_and_rejects_bad_modality(data):
    model = TinyCrossModal()
    mri, _, labels = data[1].tensors
    single = TensorDataset(mri, labels)
    paired_codes, _ = encode(model, data[1], "mri")
    single_codes, _ = encode(model, single, "mri")
    assert np.array_equal(paired_codes, single_codes)
    with pytest.raises(ValueError, match="modality='ct'"):
        encode(model, single, "ct")


def test_evaluate_matches_the_metrics_module(data):
    model = TinyCrossModal()
    _, query, database = data
    scores = evaluate(model, query, database, top_k=10)
    q_mri, q_labels = encode(model, query, "mri")
    d_pet, d_labels = encode(model, database, "pet")
    expected = metrics.mean_average_precision(q_mri, d_pet, q_labels, d_labels, top_k=10)
    assert scores["mri_to_pet"] == pytest.approx(expected)
    assert scores["mean"] == pytest.approx((scores["mri_to_pet"] + scores["pet_to_mri"]) / 2)


def test_checkpoint_round_trip_gives_identical_codes(tmp_path, data):
    train, query, _ = data
    objective = PairwiseObjective()
    result = fit(TinyCrossModal(), objective, train, config(epochs=3))
    path = save_checkpoint(tmp_path / "run" / "model.pt", result.model, objective=objective,
                           history=result.history,
                           metadata={"method": "tiny", "bits": N_BITS, "scores": {"map": np.float64(0.5)}})
    assert not list(path.parent.glob("*.tmp"))
    assert path.stat().st_mode & 0o044, "a checkpoint should be readable by others, like any saved file"
    restored, restored_objective = TinyCrossModal(), PairwiseObjective()
    history, metadata = load_checkpoint(path, restored, objective=restored_objective)
    assert metadata == {"method": "tiny", "bits": N_BITS, "scores": {"map": 0.5}}
    assert type(metadata["scores"]["map"]) is float  # NumPy scalars are stored as Python numbers
    assert isinstance(history, History) and history.loss == result.history.loss
    assert torch.equal(restored_objective.log_scale, objective.log_scale)
    for modality in ("mri", "pet"):
        assert np.array_equal(encode(result.model, query, modality)[0], encode(restored, query, modality)[0])


def test_bad_checkpoints_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        load_checkpoint(tmp_path / "nothing.pt", TinyCrossModal())
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="corrupt.pt"):
        load_checkpoint(corrupt, TinyCrossModal())


def test_bad_arguments_are_named(data):
    with pytest.raises(ValueError, match="epochs"):
        fit(TinyCrossModal(), PairwiseObjective(), data[0], config(epochs=0))
    with pytest.raises(ValueError, match="val_database"):
        fit(TinyCrossModal(), PairwiseObjective(), data[0], config(), val_query=data[1])


def test_a_diverging_loss_stops_with_a_clear_error(data):
    def objective(model, batch):
        loss = model.encode(batch[0], "mri").sum() * float("nan")
        return loss, {}

    with pytest.raises(FloatingPointError, match="epoch 1"):
        fit(TinyCrossModal(), objective, data[0], config())


def test_no_mixed_precision_on_the_cpu():
    assert autocast_dtype(torch.device("cpu")) is None


def test_cross_modal_objective_feeds_each_branch_its_modality(data):
    from neurohash_lite.train import CrossModalObjective

    seen = {}

    class Recorder(nn.Module):
        def forward(self, u_x, u_y, labels):
            seen.update(u_x=u_x, u_y=u_y, labels=labels)
            return (u_x - u_y).pow(2).mean(), {}

    model = TinyCrossModal()
    mri, pet, labels = data[1].tensors
    loss, parts = CrossModalObjective(Recorder())(model, (mri, pet, labels))
    assert torch.equal(seen["u_x"], model.encode(mri, "mri"))
    assert torch.equal(seen["u_y"], model.encode(pet, "pet"))
    assert torch.equal(seen["labels"], labels)
    assert loss.requires_grad and parts == {}
