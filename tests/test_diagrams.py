"""The diagrams print the models' real sizes, and stay legible (neurohash_lite.viz.diagrams)."""

from __future__ import annotations

import itertools
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.text import Text
from torch import nn

from neurohash_lite.dcpha_model import DCPHANet
from neurohash_lite.models import ALEXNET_CHANNELS, CrossModalHashNet
from neurohash_lite.runtime import TIERS
from neurohash_lite.viz import draw_dcpha_network, draw_retrieval_pipeline, draw_two_branch_network

BOOK = TIERS["book"]
BOOK_BITS = min(BOOK.bits)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def labels(fig: Figure) -> list[str]:
    """Every non-empty string drawn on the figure."""
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def joined(fig: Figure) -> str:
    return "\n".join(labels(fig))


def conv_channels(branch) -> list[int]:
    return [m.out_channels for m in branch.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))]


def book_ahs_model(**options) -> CrossModalHashNet:
    kwargs = dict(n_bits=BOOK_BITS, in_channels=BOOK.n_slices, width=BOOK.width)
    return CrossModalHashNet(**{**kwargs, **options})


def assert_legible(fig: Figure) -> None:
    """No two labels overlap, none is cut by the figure's edge, none is under 9 pt."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = fig.bbox
    texts = [t for t in fig.findobj(Text) if t.get_text().strip() and t.get_visible()]
    boxes = []
    for text in texts:
        assert text.get_fontsize() >= 9, f"{text.get_text()!r} is set at {text.get_fontsize()} pt"
        box = text.get_window_extent(renderer)
        assert (box.x0 >= frame.x0 - 1 and box.x1 <= frame.x1 + 1 and box.y0 >= frame.y0 - 1
                and box.y1 <= frame.y1 + 1), f"{text.get_text()!r} is clipped by the figure's edge"
        boxes.append(box.shrunk(0.98, 0.9))  # tolerate touching line spacing
    for (a, ta), (b, tb) in itertools.combinations(zip(boxes, texts), 2):
        assert not a.overlaps(b), f"{ta.get_text()!r} overlaps {tb.get_text()!r}"


# --------------------------------------------------------------------------
# Method A
# --------------------------------------------------------------------------
def test_two_branch_book_tier_prints_the_real_layer_sizes():
    model = book_ahs_model()
    fig = draw_two_branch_network(model)
    assert isinstance(fig, Figure)
    text = labels(fig)
    # channels at width 0.5: AlexNet's halved, read from the modules
    expected = [round(c * BOOK.width) for c in ALEXNET_CHANNELS]
    assert conv_channels(model.mri_branch) == expected
    for channels in expected:
        assert f"{channels} ch" in text
    assert "5×5/2" in text and "max-pool 3/2" in text
    assert f"K = {BOOK_BITS}" in text
    assert f"{model.mri_branch.feature_dim} units" in text
    # the shapes are those of a real forward pass
    scan = torch.zeros(1, BOOK.n_slices, BOOK.image_size, BOOK.image_size)
    model.eval()
    with torch.no_grad():
        after_convs = model.mri_branch.convolutions(scan).shape[1:]
    assert "×".join(map(str, after_convs)) in text
    assert f"{BOOK.n_slices}×{BOOK.image_size}×{BOOK.image_size}" in text
    assert "32×16×16" in text  # conv1 stride 2 and max-pool 3/2 on 64×64
    assert any("Theta" in t for t in text) and any("L_q" in t for t in text)
    assert fig.get_size_inches()[0] == pytest.approx(11.0)


def test_two_branch_small_model_and_its_labels_follow_the_model():
    small = CrossModalHashNet(n_bits=8, in_channels=3, width=0.25)
    fig_small = draw_two_branch_network(small, image_size=32)
    text_small = labels(fig_small)
    for channels in conv_channels(small.mri_branch):
        assert f"{channels} ch" in text_small
    assert "K = 8" in text_small and "1024 units" in text_small and "16×8×8" in text_small
    book = labels(draw_two_branch_network(book_ahs_model()))
    # a change of width or K changes the labels: read from the model, not hard-coded
    assert "K = 8" not in book and f"K = {BOOK_BITS}" not in text_small
    assert "32 ch" in book and "32 ch" not in text_small
    assert "1024 units" not in book
    other_k = labels(draw_two_branch_network(book_ahs_model(n_bits=64)))
    assert "K = 64" in other_k and f"K = {BOOK_BITS}" not in other_k


def test_two_branch_3d_input_shape_and_training_flags():
    model = CrossModalHashNet(n_bits=16, in_channels=1, spatial_dims=3, width=0.25)
    model.train()
    model.pet_branch.eval()  # a partly frozen model keeps its flags
    text = labels(draw_two_branch_network(model, input_shape=(1, 27, 32, 27)))
    assert "1×27×32×27" in text and "5×5×5/2" in text
    assert model.mri_branch.training and not model.pet_branch.training
    assert all(m.training for m in model.mri_branch.modules())
    with pytest.raises(ValueError, match="channels"):
        draw_two_branch_network(model, input_shape=(3, 27, 32, 27))
    with pytest.raises(ValueError, match="mri_branch"):
        draw_two_branch_network(nn.Linear(2, 2))


def test_two_branch_is_legible():
    assert_legible(draw_two_branch_network(book_ahs_model()))
    assert_legible(draw_two_branch_network(CrossModalHashNet(n_bits=8, width=0.25), image_size=32))


# --------------------------------------------------------------------------
# Method B
# --------------------------------------------------------------------------
def test_dcpha_book_tier_prints_the_real_sizes():
    model = DCPHANet(BOOK_BITS, in_channels=BOOK.n_slices, width=BOOK.width)
    fig = draw_dcpha_network(model)
    assert isinstance(fig, Figure)
    text = joined(fig)
    d = model.feature_dim
    hidden = model.decoder.layers[0].out_features
    assert f"\\mathbb{{R}}^{{{d}}}" in text                       # the feature f
    assert f"linear {d}→{hidden}, ReLU" in text                  # the decoder, read from its layers
    assert f"linear {hidden}→{BOOK_BITS}" in text
    assert f"G$: {d}→{d}" in text and f"G$: {BOOK_BITS}→{BOOK_BITS}" in text  # the two gates
    assert f"linear {d}→3, softmax" in text and f"{BOOK_BITS} bits" in text
    assert "channels " + "·".join(str(c) for c in conv_channels(model.encoder)) in text
    assert "encoder (shared)" in text
    for term in ("J_1", "J_2", "R$ on $h"):
        assert term in text
    assert fig.get_size_inches()[0] == pytest.approx(11.0)


def test_dcpha_small_model_and_its_labels_follow_the_model():
    small = DCPHANet(8, width=0.25, decoder_hidden=64, attention=False, shared_encoder=False)
    small.train()
    text = joined(draw_dcpha_network(small, image_size=32))
    assert small.training and all(m.training for m in small.modules())
    assert "linear 1024→64, ReLU" in text and "linear 64→8" in text
    assert "sMRI encoder" in text and "PET encoder" in text and "encoder (shared)" not in text
    assert "no gate" in text and "8 bits" in text and "3×32×32" in text
    book = joined(draw_dcpha_network(DCPHANet(BOOK_BITS, width=BOOK.width)))
    assert "linear 1024→64" not in book and "no gate" not in book
    with pytest.raises(ValueError, match="DCPHANet"):
        draw_dcpha_network(CrossModalHashNet(8, width=0.25))


def test_dcpha_is_legible():
    assert_legible(draw_dcpha_network(DCPHANet(BOOK_BITS, width=BOOK.width)))
    assert_legible(draw_dcpha_network(DCPHANet(8, width=0.25, shared_encoder=False), image_size=32))


# --------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------
def test_pipeline_defaults_are_the_book_tier():
    fig = draw_retrieval_pipeline()
    assert isinstance(fig, Figure)
    text = joined(fig)
    assert f"{BOOK.n_slices}×{BOOK.image_size}×{BOOK.image_size}" in text
    assert f"{BOOK_BITS} bits" in text
    assert f"packed: {(BOOK_BITS + 7) // 8} bytes/code" in text
    assert "XOR" in text and "popcount" in text and "tie group" in text
    distances = [int(d) for d in re.findall(r"\$d_H\$ = (\d+):", text)]
    assert distances and distances == sorted(set(distances))  # one line per tie group, nearest first
    assert_legible(fig)


def test_pipeline_labels_follow_the_arguments():
    text = joined(draw_retrieval_pipeline(n_slices=5, image_size=32, n_bits=64))
    assert "5×32×32" in text and "64 bits" in text and "packed: 8 bytes/code" in text
    assert f"{BOOK_BITS} bits" not in text
    volume = joined(draw_retrieval_pipeline(n_bits=128, spatial_dims=3, volume_shape=(40, 48, 40)))
    assert "1×40×48×40" in volume and "C×D×H×W" in volume and "packed: 16 bytes/code" in volume
    with pytest.raises(ValueError, match="n_bits"):
        draw_retrieval_pipeline(n_bits=0)
    with pytest.raises(ValueError, match="spatial_dims"):
        draw_retrieval_pipeline(spatial_dims=4)


def test_the_legibility_check_catches_an_overlap_and_a_clipped_label():
    fig = plt.figure(figsize=(4, 2))
    fig.text(0.5, 0.5, "conv1 5×5/2", fontsize=10)
    fig.text(0.52, 0.5, "32 ch, BN", fontsize=10)
    with pytest.raises(AssertionError, match="overlaps"):
        assert_legible(fig)
    clipped = plt.figure(figsize=(4, 2))
    clipped.text(0.95, 0.5, "a long label past the edge", fontsize=10)
    with pytest.raises(AssertionError, match="clipped"):
        assert_legible(clipped)
