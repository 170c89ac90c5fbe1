"""The DCPHA network: its pieces by hand, what each training step may touch,
and a short three-step run that separates two classes."""

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from neurohash_lite.dcpha_model import (
    DCPHAHead,
    DCPHANet,
    DCPHAObjective,
    DecoderPretrainObjective,
    EncoderPretrainObjective,
    HashDecoder,
    SemanticsPreservingAttentionBranch,
    feature_dataset,
    train_dcpha,
)
from neurohash_lite.train import TrainConfig, encode, evaluate, fit, recalibrate_batch_norm


def tiny_model(**options):
    options = {"n_bits": 16, "width": 0.25, "dropout": 0.0, "decoder_hidden": 32, **options}
    return DCPHANet(**options)


# --------------------------------------------------------------------------
# The pieces by hand
# --------------------------------------------------------------------------
def test_spab_is_a_gate_then_a_linear_classifier():
    torch.manual_seed(0)
    branch = SemanticsPreservingAttentionBranch(5, 3).double()
    v = torch.randn(4, 5, dtype=torch.float64)
    gate = torch.sigmoid(v @ branch.gate.weight.T + branch.gate.bias)
    expected = (gate * v) @ branch.classifier.weight.T + branch.classifier.bias
    assert torch.allclose(branch(v), expected)


def test_spab_without_attention_is_one_linear_layer():
    branch = SemanticsPreservingAttentionBranch(5, 3, attention=False)
    assert branch.gate is None
    assert [type(m) for m in branch.modules()] == [SemanticsPreservingAttentionBranch, nn.Linear]
    v = torch.randn(4, 5)
    assert torch.allclose(branch(v), v @ branch.classifier.weight.T + branch.classifier.bias)


def test_decoder_by_hand():
    torch.manual_seed(0)
    decoder = HashDecoder(6, 4, hidden_dim=5).double()
    f = torch.randn(3, 6, dtype=torch.float64)
    first, _, second = decoder.layers
    expected = torch.tanh(torch.relu(f @ first.weight.T + first.bias) @ second.weight.T + second.bias)
    assert torch.allclose(decoder(f), expected)


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("attention", [True, False])
def test_network_shapes_and_code_range(shared, attention):
    model = tiny_model(shared_encoder=shared, attention=attention, n_classes=3)
    model.eval()
    x = torch.randn(5, 3, 32, 32)
    for modality in ("mri", "pet"):
        out = model(x, modality)
        assert out.features.shape == (5, model.feature_dim)
        assert out.y_logits.shape == (5, 3) and out.r_logits.shape == (5, 3)
        assert out.codes.shape == (5, 16)
        assert torch.all(out.codes.abs() < 1)
        assert torch.equal(model.encode(x, modality), out.codes)


def test_shared_encoder_reads_both_modalities_alike_and_separate_ones_do_not():
    x = torch.randn(3, 3, 32, 32)
    shared = tiny_model().eval()
    assert torch.equal(shared.encode(x, "mri"), shared.encode(x, "pet"))
    separate = tiny_model(shared_encoder=False).eval()
    assert not torch.allclose(separate.encode(x, "mri"), separate.encode(x, "pet"))
    # one more encoder's worth of parameters
    n_shared = sum(p.numel() for p in shared.parameters())
    n_separate = sum(p.numel() for p in separate.parameters())
    assert n_separate - n_shared == sum(p.numel() for p in shared.encoder.parameters())


def test_per_modality_encoders_take_their_own_channels_and_three_modalities():
    model = tiny_model(shared_encoder=False, in_channels=(3, 1, 2), modalities=("mri", "pet", "dwi")).eval()
    assert model.encode(torch.randn(2, 1, 32, 32), "pet").shape == (2, 16)
    assert model.encode(torch.randn(2, 2, 32, 32), "dwi").shape == (2, 16)


def test_three_dimensional_volumes():
    model = tiny_model(in_channels=1, spatial_dims=3).eval()
    assert model.encode(torch.randn(2, 1, 20, 24, 20), "pet").shape == (2, 16)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="modality='ct'"):
        tiny_model().encode(torch.randn(1, 3, 32, 32), "ct")
    with pytest.raises(ValueError, match="shared encoder takes one in_channels"):
        tiny_model(in_channels=(3, 1))
    with pytest.raises(ValueError, match="one entry per modality"):
        tiny_model(in_channels=(3, 1, 1), shared_encoder=False)
    with pytest.raises(ValueError, match="expects \\(N, 5\\)"):
        SemanticsPreservingAttentionBranch(5, 3)(torch.randn(2, 4))
    with pytest.raises(ValueError, match="similarity='printed'"):
        DCPHAObjective(similarity="printed")
    with pytest.raises(ValueError, match="labels must lie in"):
        DCPHAObjective()(tiny_model(n_classes=2), (torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32), torch.tensor([0, 2])))


# --------------------------------------------------------------------------
# What each step trains
# --------------------------------------------------------------------------
def batch(n=6, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(n, 3, 32, 32, generator=generator), torch.randn(n, 3, 32, 32, generator=generator),
            torch.tensor([0, 1, 2] * (n // 3)))


def grads_of(parameters):
    return [p.grad for p in parameters]


def test_encoder_objective_reaches_only_the_encoder_and_spab_e():
    model = tiny_model()
    loss, parts = EncoderPretrainObjective()(model, batch())
    loss.backward()
    # the encoder's own hash layer is never used: DCPHA's decoder makes the codes
    encoder = [p for name, p in model.encoder.named_parameters() if not name.startswith("hash_layer")]
    assert all(g is not None for g in grads_of(encoder))
    assert all(g is not None for g in grads_of(model.spab_e.parameters()))
    assert all(g is None for g in grads_of(model.decoder_parameters()))
    assert set(parts) == {"cross_entropy"}


def test_pretraining_objectives_are_cross_entropies():
    model = tiny_model().eval()  # eval mode: no batch statistics, so the modalities may be run apart
    mri, pet, labels = batch()
    loss, _ = EncoderPretrainObjective()(model, (mri, pet, labels))
    y_logits = torch.cat([model(mri, "mri").y_logits, model(pet, "pet").y_logits])
    assert loss.item() == pytest.approx(nn.functional.cross_entropy(y_logits, labels.repeat(2)).item(), rel=1e-6)
    loss, parts = DecoderPretrainObjective(lambda_r=0.5)(model, (mri, pet, labels))
    out = [model(mri, "mri"), model(pet, "pet")]
    r_logits = torch.cat([o.r_logits for o in out])
    codes = torch.cat([o.codes for o in out])
    expected = nn.functional.cross_entropy(r_logits, labels.repeat(2)) + 0.5 * (codes.abs() - 1).abs().mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_decoder_objective_leaves_the_encoder_and_its_statistics_alone():
    model = tiny_model()
    model.train()
    loss, parts = DecoderPretrainObjective()(model, batch())
    loss.backward()
    assert all(g is None for g in grads_of(model.encoder_parameters()))
    assert all(g is not None for g in grads_of(model.decoder_parameters()))
    assert set(parts) == {"cross_entropy", "regularizer"}
    # trained as step 2 is, the frozen encoder runs in eval mode: its batch-norm statistics stay put
    model = tiny_model(n_classes=2)
    encoder_state = copy.deepcopy(model.encoder.state_dict())
    decoder_state = copy.deepcopy(model.decoder.state_dict())
    fit(model, DecoderPretrainObjective(), two_class_subjects(), config(2), trainable=model.decoder_parameters())
    for name, value in model.encoder.state_dict().items():
        assert torch.equal(value, encoder_state[name]), name
    assert not all(torch.equal(v, decoder_state[k]) for k, v in model.decoder.state_dict().items())


def test_full_objective_reaches_every_piece_and_reports_its_parts():
    model = tiny_model()
    loss, parts = DCPHAObjective(gamma=2.0)(model, batch())
    loss.backward()
    used = [p for name, p in model.named_parameters() if "hash_layer" not in name]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in used)
    assert set(parts) == {"j1", "j2", "regularizer"}
    total = 0.3 * parts["j1"] + 1.0 * parts["j2"] + 0.1 * parts["regularizer"]
    assert loss.item() == pytest.approx(total.item(), rel=1e-6)


@pytest.mark.parametrize("alpha, beta", [(0.0, 1.0), (1.0, 0.0)])
def test_ablations_are_zero_weights(alpha, beta):
    model = tiny_model()
    loss, parts = DCPHAObjective(alpha=alpha, beta=beta, lambda_r=0.0)(model, batch())
    expected = alpha * parts["j1"] + beta * parts["j2"]
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


# --------------------------------------------------------------------------
# Three steps on the shared training path
# --------------------------------------------------------------------------
def two_class_subjects(n=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.tensor([0, 1] * (n // 2))
    mri = torch.randn(n, 3, 32, 32, generator=generator)
    pet = torch.randn(n, 3, 32, 32, generator=generator)
    return TensorDataset(mri, pet, labels)


def config(epochs, **changes):
    return TrainConfig(epochs=epochs, batch_size=8, lr=1e-3, patience=None, device="cpu", amp=False,
                       progress=False, seed=0, **changes)


def test_each_step_moves_only_its_own_parameters():
    data = two_class_subjects()
    model = tiny_model(n_classes=2)
    start = copy.deepcopy(model.state_dict())
    train_dcpha(model, data, pretrain_encoder=config(1))
    assert torch.equal(model.decoder.layers[0].weight, start["decoder.layers.0.weight"])
    assert not torch.equal(model.spab_e.classifier.weight, start["spab_e.classifier.weight"])
    after_step_1 = copy.deepcopy(model.state_dict())
    train_dcpha(model, data, pretrain_decoder=config(1))
    for name, value in model.state_dict().items():
        if name.startswith(("encoder.", "spab_e.")):
            assert torch.equal(value, after_step_1[name]), name
    assert not torch.equal(model.spab_d.classifier.weight, after_step_1["spab_d.classifier.weight"])


def test_short_three_step_run_separates_two_classes():
    """Eight random subjects, two classes: the three steps memorise them, so
    every code sits at Hamming distance 0 from its classmates' codes in the
    other modality and K from the others'."""
    data = two_class_subjects()
    model = tiny_model(n_classes=2)
    result = train_dcpha(model, data, pretrain_encoder=config(4), pretrain_decoder=config(4), finetune=config(12),
                         val_query=data, val_database=data)
    assert list(result.steps) == ["pretrain_encoder", "pretrain_decoder", "finetune"]
    finetune = result.steps["finetune"].history
    assert finetune.loss[-1] < finetune.loss[0]
    scores = evaluate(model, data, data)
    assert scores["mri_to_pet"] == 1.0 and scores["pet_to_mri"] == 1.0
    b_mri, labels = encode(model, data, "mri")
    b_pet, _ = encode(model, data, "pet")
    hamming = (16 - b_mri.astype(int) @ b_pet.T.astype(int)) / 2
    same = labels[:, None] == labels[None, :]
    assert hamming[same].max() < hamming[~same].min()
    assert np.isfinite(result.seconds)


def test_train_dcpha_rejects_nothing_to_do():
    with pytest.raises(ValueError, match="every step is None"):
        train_dcpha(tiny_model(), two_class_subjects())


# --------------------------------------------------------------------------
# The head on precomputed features
# --------------------------------------------------------------------------
def test_head_on_features_computes_what_the_network_computes():
    data = two_class_subjects()
    network = tiny_model(n_classes=2).eval()
    features = feature_dataset(network, data, batch_size=3)
    head = DCPHAHead(network).eval()
    mri, pet, labels = data.tensors
    f_mri, f_pet, f_labels = features.tensors
    assert torch.equal(f_labels, labels)
    with torch.no_grad():
        for x, f, modality in ((mri, f_mri, "mri"), (pet, f_pet, "pet")):
            expected = network(x, modality)
            got = head(f, modality)
            for a, b in zip(expected, got):
                assert torch.allclose(a, b, atol=1e-6)
    # the head is a copy: training it leaves the network alone
    before = copy.deepcopy(network.decoder.state_dict())
    train_dcpha(head, features, finetune=config(2))
    for name, value in network.decoder.state_dict().items():
        assert torch.equal(value, before[name])
    assert not torch.equal(head.decoder.layers[0].weight, before["layers.0.weight"])


def test_head_runs_the_decoder_step_and_refuses_the_encoder_step():
    network = tiny_model(n_classes=2)
    features = feature_dataset(network, two_class_subjects())
    head = DCPHAHead(network)
    spab_e = copy.deepcopy(head.spab_e.state_dict())
    train_dcpha(head, features, pretrain_decoder=config(2))
    for name, value in head.spab_e.state_dict().items():
        assert torch.equal(value, spab_e[name])
    with pytest.raises(ValueError, match="no encoder to pretrain"):
        train_dcpha(head, features, pretrain_encoder=config(1))
    with pytest.raises(ValueError, match="features of shape"):
        head.encode(torch.randn(2, 5), "mri")


# --------------------------------------------------------------------------
# Batch normalisation across modalities
# --------------------------------------------------------------------------
def test_shared_encoder_reads_a_paired_batch_as_one_batch():
    model = tiny_model()
    mri, pet, _ = batch()
    model.train()
    f_mri, f_pet = model.features_pair(mri, pet)
    pooled = model.encoder.features(torch.cat([mri, pet]))
    assert torch.allclose(torch.cat([f_mri, f_pet]), pooled, atol=1e-6)
    model.eval()  # in eval mode there are no batch statistics: the same as one modality at a time
    f_mri, f_pet = model.features_pair(mri, pet)
    assert torch.allclose(f_mri, model.features(mri, "mri"), atol=1e-6)
    assert torch.allclose(f_pet, model.features(pet, "pet"), atol=1e-6)


def test_recalibration_sets_the_running_statistics_of_the_current_weights():
    data = two_class_subjects()
    model = tiny_model(n_classes=2)
    weights = {name: p.detach().clone() for name, p in model.named_parameters()}
    recalibrate_batch_norm(model, EncoderPretrainObjective(), data, batch_size=len(data))
    mri, pet, _ = data.tensors
    first_conv, first_norm = model.encoder.convolutions[0], model.encoder.convolutions[1]
    with torch.no_grad():
        activations = first_conv(torch.cat([mri, pet]))
    assert torch.allclose(first_norm.running_mean, activations.mean(dim=(0, 2, 3)), atol=1e-5)
    assert torch.allclose(first_norm.running_var, activations.var(dim=(0, 2, 3)), rtol=1e-4)
    assert first_norm.momentum == 0.1
    for name, p in model.named_parameters():
        assert torch.equal(p, weights[name]), name


def test_recalibrated_encoder_tells_subjects_apart_in_eval_mode():
    """After two steps the running statistics still sit near their initial
    values and the eval-mode features barely vary between subjects; fit
    recomputes them unless told not to."""
    data = two_class_subjects()
    model = tiny_model(n_classes=2)
    start = copy.deepcopy(model.state_dict())
    fit(model, EncoderPretrainObjective(), data, config(2, recalibrate=False), trainable=model.encoder_parameters())
    spread_before = feature_dataset(model, data).tensors[0].std(0).mean()
    recalibrate_batch_norm(model, EncoderPretrainObjective(), data)
    spread_after = feature_dataset(model, data).tensors[0].std(0).mean()
    assert spread_after > 5 * spread_before
    model.load_state_dict(start)
    fit(model, EncoderPretrainObjective(), data, config(2), trainable=model.encoder_parameters())
    assert torch.allclose(feature_dataset(model, data).tensors[0].std(0).mean(), spread_after)
