"""Schematic diagrams of the book's networks and pipeline, drawn from the code.

Every number a diagram prints is read from the model it is given: channel
counts, kernel sizes and strides from the convolution modules, widths from
the linear layers, the code length K from the hash layer, and the shape after
every stage from a forward pass of a dummy scan through the real modules (in
eval mode, without gradients). Change ``width`` or ``n_bits`` and the drawing
changes with it; it cannot drift from the code.

- :func:`draw_two_branch_network`: Method A's two AlexNet-style branches
  (Tao & An, 2021, Fig. 2) and the loss terms that join them;
- :func:`draw_dcpha_network`: DCPHA's encoder, attention branches and
  decoder (Wang & Zeng, 2023, Fig. 1) and its objective's terms;
- :func:`draw_retrieval_pipeline`: from a scan to a ranked list by Hamming
  distance, the path every chapter follows.

Matplotlib only (the book builds offline); each function returns its
:class:`matplotlib.figure.Figure`, drawn on one axes whose units are inches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

__all__ = ["draw_two_branch_network", "draw_dcpha_network", "draw_retrieval_pipeline"]

#: Figure width in inches: a book page at 100 %.
FIGURE_WIDTH = 11.0
#: Smallest font of any label, in points.
FONT_SIZE = 9.5
#: Box titles, and the figure title, in points.
TITLE_BOX_SIZE = 10
TITLE_SIZE = 13
LINE_HEIGHT = FONT_SIZE / 72 * 1.45

# Light fills, one per kind of stage.
FILL = {
    "input": "#eeeeee",
    "conv": "#dbe8f6",
    "fc": "#dcefd6",
    "hash": "#fde2c8",
    "code": "#fff3c4",
    "binary": "#f3f3f3",
    "attention": "#eadcf4",
    "loss": "#fbe0e0",
    "index": "#e0f0f0",
}
EDGE = "#555555"
ARROW = "#333333"
NOTE = "#444444"

MODALITY_NAMES = {"mri": "sMRI", "pet": "PET"}


# --------------------------------------------------------------------------
# Drawing primitives (coordinates in inches)
# --------------------------------------------------------------------------
def _text_width(text: str, size: float = FONT_SIZE, bold: bool = False) -> float:
    """Width in inches of ``text`` (mathtext allowed) set at ``size`` points."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    if not text:
        return 0.0
    prop = FontProperties(size=size, weight="bold" if bold else "normal")
    return max(TextPath((0, 0), line, prop=prop).get_extents().width for line in text.split("\n")) / 72


def _content_width(title: str, lines=(), pad: float = 0.16) -> float:
    """The width a box needs for its bold title and its lines, plus padding."""
    widths = [_text_width(title, TITLE_BOX_SIZE, bold=True)] + [_text_width(line) for line in lines]
    return max(widths) + pad


def _canvas(width: float, height: float, title: str):
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    ax.text(width / 2, height - 0.15, title, ha="center", va="top", fontsize=TITLE_SIZE, fontweight="bold")
    return fig, ax


def _box(ax, x, y, w, h, title, lines=(), fill="#ffffff", linestyle="-"):
    """A rounded box at (x, y) (lower left) with a bold title and lines of text below it."""
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.08",
                                facecolor=fill, edgecolor=EDGE, linewidth=1.0, linestyle=linestyle))
    lines = [line for line in lines if line]
    title_height = TITLE_BOX_SIZE / 72 * 1.5 if title else 0.0
    block = title_height + LINE_HEIGHT * len(lines)
    top = y + h / 2 + block / 2
    if title:
        ax.text(x + w / 2, top, title, ha="center", va="top", fontsize=TITLE_BOX_SIZE, fontweight="bold")
        top -= title_height
    for line in lines:
        ax.text(x + w / 2, top, line, ha="center", va="top", fontsize=FONT_SIZE)
        top -= LINE_HEIGHT
    return _Box(x, y, w, h)


def _box_height(title: str, lines=(), pad: float = 0.22) -> float:
    return (TITLE_BOX_SIZE / 72 * 1.5 if title else 0.0) + LINE_HEIGHT * len([l for l in lines if l]) + pad


@dataclass(frozen=True)
class _Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def left(self):
        return (self.x, self.y + self.h / 2)

    @property
    def right(self):
        return (self.x + self.w, self.y + self.h / 2)

    @property
    def top(self):
        return (self.x + self.w / 2, self.y + self.h)

    @property
    def bottom(self):
        return (self.x + self.w / 2, self.y)

    @property
    def cx(self):
        return self.x + self.w / 2


def _arrow(ax, start, end, color=ARROW, lw=1.3):
    ax.annotate("", xy=end, xytext=start,
                arrowprops=dict(arrowstyle="-|>", color=color, lw=lw, shrinkA=0, shrinkB=0, mutation_scale=12))


def _path_arrow(ax, points, color=ARROW, lw=1.3):
    """A polyline whose last segment ends in an arrow head."""
    xs, ys = zip(*points[:-1])
    ax.plot(xs, ys, color=color, lw=lw, solid_capstyle="butt")
    _arrow(ax, points[-2], points[-1], color=color, lw=lw)


def _place(widths, min_gap=0.14, margin=0.1, min_width=FIGURE_WIDTH):
    """Left edges of boxes of ``widths`` in one row, spread over the figure; and the figure width.

    The gaps share what the boxes leave of ``min_width``; when the boxes need
    more room than that, the figure grows instead of the text shrinking.
    """
    total = sum(widths)
    n_gaps = max(len(widths) - 1, 1)
    width = max(min_width, total + n_gaps * min_gap + 2 * margin)
    gap = (width - 2 * margin - total) / n_gaps
    xs = [margin]
    for w in widths[:-1]:
        xs.append(xs[-1] + w + gap)
    return xs, width


def _shape_text(shape: Sequence[int]) -> str:
    return "×".join(str(int(s)) for s in shape)


def _kernel_text(module) -> str:
    kernel = "×".join(str(k) for k in module.kernel_size)
    stride = module.stride[0] if isinstance(module.stride, tuple) else module.stride
    return f"{kernel}/{stride}" if stride != 1 else kernel


def _pool_text(module) -> str:
    kernel = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
    stride = module.stride if isinstance(module.stride, int) else module.stride[0]
    return f"max-pool {kernel}/{stride}"


# --------------------------------------------------------------------------
# Reading a branch: its stages and their real output shapes
# --------------------------------------------------------------------------
@dataclass
class _Stage:
    kind: str          # "conv", "avgpool", "fc", "hash"
    name: str
    lines: list
    last: object       # the module whose output is the stage's output
    size: int = 0      # channels of a conv, units of a linear layer
    kernel: str = ""
    shape: tuple = ()


def _branch_stages(branch) -> list[_Stage]:
    """The stages of an :class:`~neurohash_lite.models.AlexNetHashBranch`, read from its modules.

    A stage is a convolution or a linear layer with what follows it up to the
    next one (batch norm, ReLU, max-pooling, dropout); the adaptive pooling
    is a stage of its own.
    """
    from torch import nn

    conv_types = (nn.Conv2d, nn.Conv3d)
    max_pools = (nn.MaxPool2d, nn.MaxPool3d)
    adaptive = (nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)
    stages: list[_Stage] = []
    n_conv = 0
    for module in branch.convolutions:
        if isinstance(module, conv_types):
            n_conv += 1
            kernel = _kernel_text(module)
            stages.append(_Stage("conv", f"conv{n_conv}", [kernel, f"{module.out_channels} ch"], module,
                                 size=module.out_channels, kernel=kernel))
        elif isinstance(module, adaptive):
            size = module.output_size
            size = size if isinstance(size, tuple) else (size,) * branch.spatial_dims
            stages.append(_Stage("avgpool", "avg-pool", [f"to {_shape_text(size)}"], module))
        elif stages:
            if isinstance(module, max_pools):
                stages[-1].lines.append(_pool_text(module))
            stages[-1].last = module
    n_fc = n_conv
    for module in branch.fully_connected:
        if isinstance(module, nn.Linear):
            n_fc += 1
            stages.append(_Stage("fc", f"fc{n_fc}", [f"{module.out_features} units"], module,
                                 size=module.out_features))
        elif stages and stages[-1].kind == "fc":
            if isinstance(module, nn.Dropout):
                stages[-1].lines.append(f"dropout {module.p:g}")
            stages[-1].last = module
    hash_layer = branch.hash_layer
    stages.append(_Stage("hash", f"hash fc{n_fc + 1}", [f"K = {hash_layer.out_features}", "then tanh"],
                         hash_layer, size=hash_layer.out_features))
    return stages


def _has_batch_norm(branch) -> bool:
    from torch import nn

    return any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)) for m in branch.modules())


@contextmanager
def _eval_mode(module):
    """Run ``module`` in eval mode, then give every submodule back its own training flag."""
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, training in flags:
            m.training = training


def _run_shapes(branch, stages: list[_Stage], input_shape: tuple[int, ...]) -> None:
    """Fill each stage's output shape by a forward pass of one zero scan in eval mode."""
    import torch

    shapes = {}
    hooks = [stage.last.register_forward_hook(
        lambda module, args, output, key=id(stage): shapes.__setitem__(key, tuple(output.shape[1:])))
        for stage in stages]
    parameter = next(branch.parameters())
    try:
        with _eval_mode(branch), torch.no_grad():
            branch(torch.zeros((1, *input_shape), dtype=parameter.dtype, device=parameter.device))
    finally:
        for hook in hooks:
            hook.remove()
    for stage in stages:
        stage.shape = shapes[id(stage)]


def _input_shape(branch, input_shape, image_size) -> tuple[int, ...]:
    """The scan shape (C, H, W) or (C, D, H, W): given, or from in_channels and the image size."""
    if input_shape is not None:
        shape = tuple(int(s) for s in input_shape)
        if len(shape) != branch.spatial_dims + 1:
            raise ValueError(f"input_shape {shape} must have {branch.spatial_dims + 1} entries "
                             f"(channels and {branch.spatial_dims} spatial sizes)")
        if shape[0] != branch.in_channels:
            raise ValueError(f"input_shape {shape} has {shape[0]} channels but the branch takes "
                             f"{branch.in_channels}")
        return shape
    if image_size is None:
        from neurohash_lite.runtime import TIERS

        image_size = TIERS["book"].image_size
    if isinstance(image_size, Sequence):
        size = tuple(int(s) for s in image_size)
        if len(size) != branch.spatial_dims:
            raise ValueError(f"image_size {size} must have {branch.spatial_dims} entries")
    else:
        size = (int(image_size),) * branch.spatial_dims
    return (branch.in_channels, *size)


def _layout_text(spatial_dims: int) -> str:
    return "C×H×W" if spatial_dims == 2 else "C×D×H×W"


def _per_branch(value, n: int):
    """``value`` for each of ``n`` branches: one shape for all or one per branch."""
    if value is not None and isinstance(value, Sequence) and len(value) and isinstance(value[0], Sequence):
        if len(value) != n:
            raise ValueError(f"give one input shape for all branches or one per branch ({n}), got {value!r}")
        return list(value)
    return [value] * n


# --------------------------------------------------------------------------
# Method A
# --------------------------------------------------------------------------
def draw_two_branch_network(model, input_shape=None, image_size=None, title=None):
    """Draw Method A's network: one AlexNet-style branch per modality and its losses.

    Two rows of boxes, the sMRI branch on top and the PET branch below, each
    from the scan through conv1-conv5, the pooling, fc6, fc7 and the hash
    layer to the relaxed code ``u = tanh(z)`` and the binary code
    ``b = sign(u)``; between the rows, the loss terms that join the branches.
    Every number is read from ``model``: kernel sizes, strides, channels and
    widths from its modules, and the shape under each box from a forward pass
    of one zero scan through the real branch (in eval mode, no gradients;
    every module's training flag is restored afterwards).

    Parameters
    ----------
    model : neurohash_lite.models.CrossModalHashNet
        The network; its ``mri_branch`` and ``pet_branch`` are drawn.
    input_shape : tuple of int, or a pair of them, optional
        The scan shape without the batch axis, ``(C, H, W)`` in 2D or
        ``(C, D, H, W)`` in 3D, for both branches or one per branch
        ``(mri_shape, pet_shape)``. Default: each branch's ``in_channels`` and
        ``image_size``.
    image_size : int or tuple of int, optional
        Spatial size used when ``input_shape`` is not given: one side for a
        square slice (cube volume), or the full spatial shape. Default: the
        ``book`` tier's image size (64).
    title : str, optional
        Figure title; a default names the paper's figure and K.

    Returns
    -------
    matplotlib.figure.Figure
        11 inches wide (wider only if the labels need it), every label at
        9.5 pt or more.

    Raises
    ------
    ValueError
        If ``model`` has no ``mri_branch`` and ``pet_branch``, or an input
        shape does not fit a branch.

    References
    ----------
    Tao & An (2021), Section 3.2 and Fig. 2; the losses of Section 3.3 as
    formalised in DESIGN.md §5.

    Examples
    --------
    >>> from neurohash_lite.models import CrossModalHashNet
    >>> fig = draw_two_branch_network(CrossModalHashNet(n_bits=16, width=0.5))
    """
    branches = [getattr(model, name, None) for name in ("mri_branch", "pet_branch")]
    if any(branch is None for branch in branches):
        raise ValueError("model must be a CrossModalHashNet with an mri_branch and a pet_branch, "
                         f"got {type(model).__name__}")
    shapes = [_input_shape(branch, shape, image_size)
              for branch, shape in zip(branches, _per_branch(input_shape, 2))]
    n_bits = branches[0].hash_layer.out_features
    rows = []
    for branch, scan_shape, modality, sup in zip(branches, shapes, ("sMRI", "PET"), ("x", "y")):
        stages = _branch_stages(branch)
        _run_shapes(branch, stages, scan_shape)
        fill = {"conv": FILL["conv"], "avgpool": FILL["conv"], "fc": FILL["fc"], "hash": FILL["hash"]}
        boxes = [(f"{modality} ${sup}$", [_shape_text(scan_shape), f"({_layout_text(branch.spatial_dims)})"],
                  FILL["input"], "", "-")]
        boxes += [(stage.name, stage.lines, fill[stage.kind], _shape_text(stage.shape), "-") for stage in stages]
        boxes.append((f"$u^{sup}=\\tanh(z)$", [f"$\\in(-1,1)^{{{n_bits}}}$", f"$b^{sup}=\\mathrm{{sign}}(u^{sup})$",
                                                f"{n_bits} bits"], FILL["code"], "", "-"))
        rows.append(boxes)
    if len(rows[0]) != len(rows[1]):
        raise ValueError("the two branches have different numbers of stages; draw them one at a time")
    widths = [max(_content_width(title, lines + [below], pad=0.14) for title, lines, _, below, _ in column)
              for column in zip(*rows)]
    xs, fig_width = _place(widths, min_gap=0.12)

    box_h = max(_box_height(title, lines) for row in rows for title, lines, *_ in row)
    row_y = {0: 3.3, 1: 0.42}       # lower edge of each row's boxes
    height = row_y[0] + box_h + 0.95
    fig, ax = _canvas(fig_width, height,
                      title or f"Method A: one branch per modality, K = {n_bits} bits (after Tao & An's Fig. 2)")
    code_boxes = []
    for r, (boxes, branch, modality) in enumerate(zip(rows, branches, ("sMRI", "PET"))):
        y = row_y[r]
        ax.text(xs[0], y + box_h + 0.08, f"{modality} branch ({branch.spatial_dims}D, width {branch.width:g})",
                ha="left", va="bottom", fontsize=TITLE_BOX_SIZE, fontweight="bold", color=NOTE)
        drawn = []
        for x, w, (title_text, lines, fill, below, style) in zip(xs, widths, boxes):
            drawn.append(_box(ax, x, y, w, box_h, title_text, lines, fill, linestyle=style))
            if below:
                ax.text(x + w / 2, y - 0.06, below, ha="center", va="top", fontsize=FONT_SIZE, color=NOTE,
                        style="italic")
        for left, right in zip(drawn[:-1], drawn[1:]):
            _arrow(ax, left.right, right.left)
        code_boxes.append(drawn[-1])

    # between the rows: the losses that join the branches, under the codes
    loss_lines = [
        r"$L_{lik}$ on $\Theta_{ij}=\langle u^x_i, u^y_j\rangle/K$ of every sMRI-PET pair, via $\sigma(a\,\Theta_{ij})$",
        r"$L_q$: $\Vert U^x-B\Vert^2+\Vert U^y-B\Vert^2$ with one shared code $B=\mathrm{sign}(U^x+U^y)$",
        r"$T$: $L_{metric}-L_{push}+L_{bal}$ on $p=(u+1)/2$ (triplets across modalities)",
    ]
    loss_title = "Training losses, on the relaxed codes of both branches"
    loss_w = _content_width(loss_title, loss_lines, pad=0.3)
    loss_x = code_boxes[0].x + code_boxes[0].w - loss_w
    loss_top = row_y[0] - 0.42
    loss_bottom = row_y[1] + box_h + 0.45
    _box(ax, loss_x, loss_bottom, loss_w, loss_top - loss_bottom, loss_title, loss_lines, FILL["loss"])
    _arrow(ax, code_boxes[0].bottom, (code_boxes[0].cx, loss_top))
    _arrow(ax, code_boxes[1].top, (code_boxes[1].cx, loss_bottom))
    hidden = ", ".join(stage.name for stage in _branch_stages(branches[0]) if stage.kind == "fc")
    norm = f"Each conv and {hidden}: " + ("batch norm, ReLU.\n" if all(_has_batch_norm(b) for b in branches)
                                          else "ReLU.\n")
    ax.text(xs[0], (loss_top + loss_bottom) / 2,
            norm + "Italic: the shape after each stage,\nfrom a forward pass of one scan.\n"
            "The branches share no weights;\nthe losses tie their codes together.",
            ha="left", va="center", fontsize=FONT_SIZE, color=NOTE, linespacing=1.5)
    return fig


# --------------------------------------------------------------------------
# Method B
# --------------------------------------------------------------------------
def _encoder_lines(encoder) -> list[str]:
    """Three lines that summarise an AlexNet-style encoder: kernels, channels, fc widths."""
    stages = _branch_stages(encoder)
    convs = [s for s in stages if s.kind == "conv"]
    fcs = [s for s in stages if s.kind == "fc"]
    groups = []
    for stage in convs:
        if groups and groups[-1][0] == stage.kernel:
            groups[-1][1] += 1
        else:
            groups.append([stage.kernel, 1])
    kernels = ", then ".join(k if n == 1 else f"{n}× {k}" for k, n in groups)
    return [f"{len(convs)} conv: {kernels}",
            "channels " + "·".join(str(s.size) for s in convs),
            f"{', '.join(s.name for s in fcs)}: " + ", ".join(str(s.size) for s in fcs) + " units"]


def _spab_lines(branch, symbol: str, output: str, dim: int) -> list[str]:
    lines = []
    gate = getattr(branch, "gate", None)
    if gate is not None:
        lines.append(f"gate $\\sigma(G{symbol})\\odot {symbol}$, $G$: {gate.in_features}→{gate.out_features}")
    else:
        lines.append("no gate (attention=False)")
    classifier = branch.classifier
    lines.append(f"linear {classifier.in_features}→{classifier.out_features}, softmax")
    lines.append(f"${output}$: {dim} class probabilities")
    return lines


def draw_dcpha_network(model, input_shape=None, image_size=None, title=None):
    """Draw DCPHA's network: encoder, SPAB_E, decoder, SPAB_D and the objective's terms.

    The scans of every modality go through the encoder (one shared encoder
    or one per modality, as ``model.shared_encoder`` says) to the feature
    ``f``; SPAB_E gates it, ``sigma(G f) * f``, and classifies it to ``y``;
    the decoder MLP maps it to the relaxed code ``h = tanh(.)``; SPAB_D
    classifies ``h`` to ``r``. The terms of ``J = alpha J1 + beta J2 +
    lambda R`` sit next to what they act on. Every size is read from
    ``model`` (the encoder's convolutions and fc layers, the SPABs' gates
    and classifiers, the decoder's linear layers), and the sizes of ``f``,
    ``y``, ``h`` and ``r`` come from a forward pass of one zero scan in eval
    mode (every module's training flag is restored afterwards).

    Parameters
    ----------
    model : neurohash_lite.dcpha_model.DCPHANet
    input_shape : tuple of int, optional
        The scan shape without the batch axis, ``(C, H, W)`` or
        ``(C, D, H, W)``. Default: the encoder's ``in_channels`` and
        ``image_size``.
    image_size : int or tuple of int, optional
        Spatial size when ``input_shape`` is not given; default the ``book``
        tier's (64).
    title : str, optional
        Figure title; a default names the paper's figure and K.

    Returns
    -------
    matplotlib.figure.Figure
        11 inches wide (wider only if the labels need it), every label at
        9.5 pt or more.

    Raises
    ------
    ValueError
        If ``model`` is not a DCPHANet (no ``spab_e``, ``decoder``,
        ``spab_d``, ``encoder_for``), or the input shape does not fit it.

    References
    ----------
    Wang & Zeng (2023), Fig. 1 and Eqs. (7)-(10), as formalised in
    DESIGN.md §6.

    Examples
    --------
    >>> from neurohash_lite.dcpha_model import DCPHANet
    >>> fig = draw_dcpha_network(DCPHANet(n_bits=16, width=0.5))
    """
    import torch
    from torch import nn

    for name in ("spab_e", "decoder", "spab_d", "encoder_for", "modalities", "shared_encoder"):
        if not hasattr(model, name):
            raise ValueError(f"model must be a DCPHANet (it has no {name!r}), got {type(model).__name__}")
    modalities = list(model.modalities)
    names = [MODALITY_NAMES.get(m, m) for m in modalities]
    encoders = [model.encoder_for(m) for m in modalities]
    scan_shapes = [_input_shape(encoder, input_shape, image_size) for encoder in encoders]
    decoder_layers = [m for m in model.decoder.modules() if isinstance(m, nn.Linear)]
    n_bits = int(model.n_bits)

    # real sizes: one zero scan of each modality, eval mode, no gradients
    parameter = next(model.parameters())
    with _eval_mode(model), torch.no_grad():
        outputs = [model(torch.zeros((1, *shape), dtype=parameter.dtype, device=parameter.device), m)
                   for m, shape in zip(modalities, scan_shapes)]
    dim_f, dim_y, dim_h, dim_r = (int(t.shape[1]) for t in outputs[0])

    # the main row: inputs, encoder(s), f, decoder, h, b
    n_mod = len(modalities)
    input_items = [(f"{name} $x^m$", [_shape_text(shape)]) for name, shape in zip(names, scan_shapes)]
    if model.shared_encoder:
        encoder_items = [("encoder (shared)", _encoder_lines(encoders[0]) + [f"for {', '.join(names)}"])]
    else:
        encoder_items = [(f"{name} encoder", _encoder_lines(encoder)) for name, encoder in zip(names, encoders)]
    decoder_lines = [f"linear {layer.in_features}→{layer.out_features}" + (", ReLU" if k < len(decoder_layers) - 1 else "")
                     for k, layer in enumerate(decoder_layers)] + ["then tanh"]
    f_item = ("feature $f$", [f"$f\\in\\mathbb{{R}}^{{{dim_f}}}$"])
    decoder_item = ("decoder MLP", decoder_lines)
    h_item = ("relaxed code", [r"$h=\tanh(\cdot)$", f"$\\in(-1,1)^{{{dim_h}}}$"])
    b_item = ("binary code", [r"$b=\mathrm{sign}(h)$", f"{n_bits} bits"])
    columns = [input_items, encoder_items, [f_item], [decoder_item], [h_item], [b_item]]
    widths = [max(_content_width(t, lines) for t, lines in column) for column in columns]
    xs, fig_width = _place(widths, min_gap=0.3)

    # heights and rows (from the bottom): J2 and R, the main row, SPABs and J1
    j2_lines = [r"across modalities: $S_H$ from $\Vert h^m_i-h^n_j\Vert$",
                r"within a modality: $S_I$, the cosine",
                r"both in $S_M$: softplus$(\gamma S_M)-I_{ij}\,\gamma S_M$"]
    r_lines = [r"mean $\vert\,\vert h\vert-1\vert$", "(the paper prints", r"mean $\vert h-1\vert$)"]
    low_h = max(_box_height("J2", j2_lines), _box_height("R", r_lines))
    low_y = 0.12
    main_y = low_y + low_h + 0.62
    main_h = max(_box_height(t, lines) for column in columns[2:] for t, lines in column)
    stack_gap = 0.14
    input_h = _box_height(*input_items[0], pad=0.16)
    encoder_h = max(_box_height(t, lines) for t, lines in encoder_items)
    encoder_stack = n_mod * encoder_h + (n_mod - 1) * stack_gap if not model.shared_encoder else encoder_h
    input_stack = n_mod * input_h + (n_mod - 1) * stack_gap
    centre = main_y + main_h / 2
    span = max(main_h, input_stack, encoder_stack)
    spab_e_lines = _spab_lines(model.spab_e, "f", "y", dim_y)
    spab_d_lines = _spab_lines(model.spab_d, "h", "r", dim_r)
    j1_lines = [r"$\Vert y-\ell\Vert+\Vert r-\ell\Vert$", r"$+\,\Vert y-r\Vert$", r"$\ell$: one-hot label"]
    top_h = max(_box_height("SPAB", spab_e_lines), _box_height("J1", j1_lines))
    top_y = centre + span / 2 + 0.5
    route_y = top_y + top_h + 0.25
    height = route_y + 0.75
    fig, ax = _canvas(fig_width, height, title or f"DCPHA: encoder, attention branches and decoder, "
                                                  f"K = {n_bits} bits (after Wang & Zeng's Fig. 1)")

    inputs = []
    for k, (t, lines) in enumerate(input_items):
        y = centre + input_stack / 2 - (k + 1) * input_h - k * stack_gap
        inputs.append(_box(ax, xs[0], y, widths[0], input_h, t, lines, FILL["input"]))
    if model.shared_encoder:
        t, lines = encoder_items[0]
        encoder_boxes = [_box(ax, xs[1], centre - encoder_h / 2, widths[1], encoder_h, t, lines, FILL["conv"])]
        for box in inputs:
            _arrow(ax, box.right, (xs[1], box.left[1]))
    else:
        encoder_boxes = []
        for k, (t, lines) in enumerate(encoder_items):
            y = centre + encoder_stack / 2 - (k + 1) * encoder_h - k * stack_gap
            encoder_boxes.append(_box(ax, xs[1], y, widths[1], encoder_h, t, lines, FILL["conv"]))
        for box, encoder_box in zip(inputs, encoder_boxes):
            _arrow(ax, box.right, (encoder_box.x, box.left[1]))
    f_box = _box(ax, xs[2], main_y, widths[2], main_h, *f_item, FILL["fc"])
    for box in encoder_boxes:
        y = min(max(box.left[1], f_box.y + 0.15), f_box.y + f_box.h - 0.15)
        _arrow(ax, (box.x + box.w, y), (f_box.x, y))
    decoder_box = _box(ax, xs[3], main_y, widths[3], main_h, *decoder_item, FILL["fc"])
    h_box = _box(ax, xs[4], main_y, widths[4], main_h, *h_item, FILL["code"])
    b_box = _box(ax, xs[5], main_y, widths[5], main_h, *b_item, FILL["binary"], linestyle="--")
    for left, right in ((f_box, decoder_box), (decoder_box, h_box), (h_box, b_box)):
        _arrow(ax, left.right, right.left)

    # top: SPAB_E over f, SPAB_D over h, J1 at the right
    j1_title = r"$J_1$ on $y$, $r$, $\ell$"
    j1_w = _content_width(j1_title, j1_lines, pad=0.24)
    right_edge = fig_width - 0.1
    j1 = _box(ax, right_edge - j1_w, top_y, j1_w, top_h, j1_title, j1_lines, FILL["loss"])
    spab_d_title, spab_e_title = r"SPAB$_D$ $\to$ $r$", r"SPAB$_E$ $\to$ $y$"
    spab_d_w = _content_width(spab_d_title, spab_d_lines, pad=0.24)
    spab_e_w = _content_width(spab_e_title, spab_e_lines, pad=0.24)
    spab_d_x = min(h_box.cx - spab_d_w / 2, j1.x - 0.35 - spab_d_w)
    spab_e_x = min(f_box.cx - spab_e_w / 2, spab_d_x - 0.35 - spab_e_w)
    spab_e_x = max(spab_e_x, 0.1)
    spab_e = _box(ax, spab_e_x, top_y, spab_e_w, top_h, spab_e_title, spab_e_lines, FILL["attention"])
    spab_d = _box(ax, spab_d_x, top_y, spab_d_w, top_h, spab_d_title, spab_d_lines, FILL["attention"])
    _path_arrow(ax, [f_box.top, (f_box.cx, (f_box.y + f_box.h + top_y) / 2),
                     (spab_e.cx, (f_box.y + f_box.h + top_y) / 2), spab_e.bottom]
                if abs(f_box.cx - spab_e.cx) > 0.05 else [f_box.top, (f_box.cx, top_y)])
    _path_arrow(ax, [h_box.top, (h_box.cx, (h_box.y + h_box.h + top_y) / 2),
                     (spab_d.cx, (h_box.y + h_box.h + top_y) / 2), spab_d.bottom]
                if abs(h_box.cx - spab_d.cx) > 0.05 else [h_box.top, (h_box.cx, top_y)])
    _arrow(ax, spab_d.right, j1.left)
    ax.text((spab_d.x + spab_d.w + j1.x) / 2, j1.left[1] + 0.04, "$r$", ha="center", va="bottom",
            fontsize=TITLE_BOX_SIZE)
    _path_arrow(ax, [spab_e.top, (spab_e.cx, route_y), (j1.cx, route_y), j1.top])
    ax.text(spab_e.cx + 0.08, route_y - 0.04, "$y$", ha="left", va="top", fontsize=TITLE_BOX_SIZE)

    # bottom: J2 and R on h
    r_title, j2_title = r"$R$ on $h$", r"$J_2$ on $h$"
    r_w = _content_width(r_title, r_lines, pad=0.24)
    j2_w = _content_width(j2_title, j2_lines, pad=0.24)
    reg = _box(ax, right_edge - r_w, low_y, r_w, low_h, r_title, r_lines, FILL["loss"])
    j2_x = min(h_box.cx - j2_w / 2, reg.x - 0.35 - j2_w)
    j2 = _box(ax, j2_x, low_y, j2_w, low_h, j2_title, j2_lines, FILL["loss"])
    mid = (main_y + low_y + low_h) / 2
    _path_arrow(ax, [(h_box.cx - 0.2, main_y), (h_box.cx - 0.2, mid), (j2.cx, mid), (j2.cx, low_y + low_h)]
                if abs(h_box.cx - 0.2 - j2.cx) > 0.05 else [(j2.cx, main_y), (j2.cx, low_y + low_h)])
    _path_arrow(ax, [(h_box.cx + 0.2, main_y), (h_box.cx + 0.2, mid), (reg.cx, mid), (reg.cx, low_y + low_h)])

    together = names[0] if n_mod == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    ax.text(0.1, low_y + low_h / 2,
            r"$J=\alpha J_1+\beta J_2+\lambda R$" + "\n"
            + "one SPAB$_E$, decoder and SPAB$_D$,\n" + f"shared by {together}" + "\n($m$: the modality)",
            ha="left", va="center", fontsize=FONT_SIZE, color=NOTE, linespacing=1.5)
    return fig


# --------------------------------------------------------------------------
# The retrieval pipeline
# --------------------------------------------------------------------------
def _code_cells(ax, x, y, w, values, binary):
    """A grid of K cells: grey levels for a relaxed code, black and white for a binary one."""
    from matplotlib.patches import Rectangle

    k = len(values)
    per_row = 8 if k <= 64 else 16
    rows = math.ceil(k / per_row)
    cell = min(w / per_row, 0.9 / rows, 0.16)
    x0 = x + (w - cell * per_row) / 2
    y0 = y + rows * cell / 2            # the grid is centred on height y
    for i, v in enumerate(values):
        r, c = divmod(i, per_row)
        shade = (0.0 if v > 0 else 1.0) if binary else 0.5 - 0.5 * float(v)
        ax.add_patch(Rectangle((x0 + c * cell, y0 - (r + 1) * cell), cell, cell, facecolor=str(shade),
                               edgecolor="#888888", linewidth=0.4))
    return rows * cell


def draw_retrieval_pipeline(n_slices=None, image_size=None, n_bits=None, *, spatial_dims=2,
                            volume_shape=None, n_database=40, seed=0, title=None):
    """Draw the book's retrieval pipeline, from a scan to a ranked list.

    scan → axial slices (``C × H × W``, or a 3D volume) → the hashing
    network → relaxed code ``u`` → binary code ``b`` (K bits) → the index
    (packed bits, Hamming distance by XOR and popcount) → the database ranked
    by Hamming distance, ties in groups. The codes, bytes and distances drawn
    are a real computation on toy codes (a random query and a database of
    its noisy copies) with :func:`neurohash_lite.retrieval.pack_codes` and
    :func:`~neurohash_lite.retrieval.packed_hamming_distance`.

    Parameters
    ----------
    n_slices : int, optional
        Axial slices stacked as channels (2D); default the ``book`` tier's (3).
    image_size : int, optional
        Side of a slice in pixels; default the ``book`` tier's (64).
    n_bits : int, optional
        Code length K; default the ``book`` tier's shortest (16).
    spatial_dims : {2, 3}, default 2
        3 draws a volume with one channel instead of a slice stack.
    volume_shape : tuple of 3 int, optional
        ``(D, H, W)`` of the volume when ``spatial_dims=3``; default a cube
        of side ``image_size``.
    n_database : int, default 40
        Size of the random toy database whose ranking is drawn.
    seed : int, default 0
        Seed of the toy codes.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        11 inches wide (wider only if the labels need it), every label at
        9.5 pt or more.

    Raises
    ------
    ValueError
        If a size is not a positive integer or ``spatial_dims`` is not 2 or 3.

    Examples
    --------
    >>> fig = draw_retrieval_pipeline()                  # the book tier
    >>> fig = draw_retrieval_pipeline(3, 32, 64)         # smoke-sized slices, 64 bits
    """
    from matplotlib.patches import FancyBboxPatch, Polygon, Rectangle

    from neurohash_lite.retrieval import pack_codes, packed_hamming_distance
    from neurohash_lite.runtime import TIERS

    book = TIERS["book"]
    n_slices = book.n_slices if n_slices is None else n_slices
    image_size = book.image_size if image_size is None else image_size
    n_bits = min(book.bits) if n_bits is None else n_bits
    for name, value in (("n_slices", n_slices), ("image_size", image_size), ("n_bits", n_bits),
                        ("n_database", n_database)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    n_slices, image_size, n_bits, n_database = int(n_slices), int(image_size), int(n_bits), int(n_database)
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    if spatial_dims == 3:
        volume = tuple(int(v) for v in (volume_shape or (image_size,) * 3))
        if len(volume) != 3 or min(volume) < 1:
            raise ValueError(f"volume_shape must be three positive sizes (D, H, W), got {volume_shape!r}")

    # a real computation on toy codes: a query, and a database of its noisy copies
    rng = np.random.default_rng(seed)
    u = np.tanh(1.5 * rng.standard_normal(n_bits))
    b = np.where(u >= 0, 1, -1).astype(np.int8)
    flips = rng.random((n_database, n_bits)) < rng.uniform(0.03, 0.5, size=(n_database, 1))
    database = np.where(flips, -b, b).astype(np.int8)
    query_packed = pack_codes(b[None])
    database_packed = pack_codes(database)
    distances = packed_hamming_distance(query_packed, database_packed, n_bits)[0].astype(int)
    n_bytes = query_packed.shape[1]

    def hex_bytes(packed_row, limit=3):
        return " ".join(f"{byte:02X}" for byte in packed_row[:limit]) + (" …" if len(packed_row) > limit else "")

    if spatial_dims == 2:
        shape = (n_slices, image_size, image_size)
        slice_item = ("axial slices", [f"{n_slices} slices", _shape_text(shape), "(C×H×W)"])
    else:
        shape = (1, *volume)
        slice_item = ("volume", ["one channel", _shape_text(shape), "(C×D×H×W)"])
    order = np.argsort(distances, kind="stable")
    values, counts = np.unique(distances, return_counts=True)
    ranked, start = [], 0
    for value, count in list(zip(values, counts))[:5]:
        ids = order[start:start + count]
        start += count
        ranked.append((f"$d_H$ = {value}:", " ".join(f"#{i}" for i in ids[:3]) + (" …" if count > 3 else "")))
    items = [
        ("scan", ["sMRI or PET,", "a 3D volume", "(NIfTI)"]),
        slice_item,
        ("network", ["the trained", "hashing network", "(Method A or B)"]),
        ("relaxed code", [r"$u=\tanh(z)$", f"$\\in(-1,1)^{{{n_bits}}}$"]),
        ("binary code", [r"$b=\mathrm{sign}(u)$", f"{n_bits} bits", "■ +1   □ −1"]),
        ("index", [f"packed: {n_bytes} bytes/code", f"query: {hex_bytes(query_packed[0])}",
                   "$d_H$ = popcount of", "query XOR code"]),
        ("ranked list", ["by Hamming distance;", "each line a tie group"]),
    ]
    icon_widths = [0.8, 0.8, 0.9, 1.1, 1.1, 0.0, 0.0]
    ranked_width = max(_text_width(d) + 0.08 + _text_width(ids) for d, ids in ranked) + 0.2
    icon_widths[6] = ranked_width
    widths = [max(_content_width(t, lines, pad=0.22), icon + 0.2) for (t, lines), icon in zip(items, icon_widths)]
    xs, fig_width = _place(widths, min_gap=0.2)

    box_y = 0.12
    text_h = max(len(lines) for _, lines in items) * LINE_HEIGHT
    icon_h = 1.15
    box_h = 0.2 + TITLE_BOX_SIZE / 72 * 1.5 + icon_h + text_h + 0.2
    height = box_y + box_h + 0.62
    fig, ax = _canvas(fig_width, height, title or f"Retrieval: from a scan to a ranked list, K = {n_bits} bits")
    icon_top = box_y + box_h - 0.2 - TITLE_BOX_SIZE / 72 * 1.5   # icons hang below the box titles
    text_top = icon_top - icon_h - 0.05
    fills = [FILL["input"], FILL["input"], FILL["conv"], FILL["code"], FILL["binary"], FILL["index"], FILL["index"]]
    for x, w, (t, lines), fill in zip(xs, widths, items, fills):
        ax.add_patch(FancyBboxPatch((x, box_y), w, box_h, boxstyle="round,pad=0,rounding_size=0.08",
                                    facecolor=fill, edgecolor=EDGE, linewidth=1.0))
        ax.text(x + w / 2, box_y + box_h - 0.15, t, ha="center", va="top", fontsize=TITLE_BOX_SIZE,
                fontweight="bold")
        for k, line in enumerate(lines):
            ax.text(x + w / 2, text_top - k * LINE_HEIGHT, line, ha="center", va="top", fontsize=FONT_SIZE)
    centres = [x + w / 2 for x, w in zip(xs, widths)]
    icon_mid = icon_top - icon_h / 2

    # 1. scan: a cube
    side, depth = 0.55, 0.2
    cx, cy = centres[0] - (side + depth) / 2, icon_mid - (side + depth) / 2
    ax.add_patch(Rectangle((cx, cy), side, side, facecolor="#d9d9d9", edgecolor=EDGE))
    ax.add_patch(Polygon([(cx, cy + side), (cx + depth, cy + side + depth), (cx + side + depth, cy + side + depth),
                          (cx + side, cy + side)], facecolor="#efefef", edgecolor=EDGE))
    ax.add_patch(Polygon([(cx + side, cy), (cx + side + depth, cy + depth), (cx + side + depth, cy + side + depth),
                          (cx + side, cy + side)], facecolor="#bfbfbf", edgecolor=EDGE))
    # 2. a stack of slices (at most five drawn) or one volume
    if spatial_dims == 2:
        n_icon, step = min(n_slices, 5), 0.09
        span = side + step * (min(n_slices, 5) - 1)
        for k in range(n_icon):
            off = step * (n_icon - 1 - k)
            ax.add_patch(Rectangle((centres[1] - span / 2 + off, icon_mid - span / 2 + off), side, side,
                                   facecolor=str(0.62 + 0.07 * k), edgecolor=EDGE))
    else:
        ax.add_patch(Rectangle((centres[1] - side / 2, icon_mid - side / 2), side, side, facecolor="#cccccc",
                               edgecolor=EDGE))
    # 3. the network: a funnel
    ax.add_patch(Polygon([(centres[2] - 0.42, icon_mid + 0.42), (centres[2] + 0.42, icon_mid + 0.14),
                          (centres[2] + 0.42, icon_mid - 0.14), (centres[2] - 0.42, icon_mid - 0.42)],
                         facecolor="#b9d3ee", edgecolor=EDGE))
    # 4., 5. the codes as cells
    for i, values_, binary in ((3, u, False), (4, b, True)):
        _code_cells(ax, xs[i] + 0.1, icon_mid, widths[i] - 0.2, values_, binary)
    # 6. the index: the first packed database codes
    rows = [f"#{i}  {hex_bytes(database_packed[i])}" for i in range(min(3, n_database))]
    ax.text(centres[5], icon_top - 0.05, f"{n_database} codes:\n" + "\n".join(rows) + "\n…", ha="center",
            va="top", fontsize=FONT_SIZE, family="monospace", linespacing=1.25)
    # 7. the ranked list, one tie group a line
    left = centres[6] - ranked_width / 2 + 0.1
    column = left + max(_text_width(d) for d, _ in ranked) + 0.08
    for k, (d, ids) in enumerate(ranked):
        y = icon_top - 0.05 - k * FONT_SIZE / 72 * 1.55
        ax.text(left, y, d, ha="left", va="top", fontsize=FONT_SIZE)
        ax.text(column, y, ids, ha="left", va="top", fontsize=FONT_SIZE)

    for k in range(len(items) - 1):
        y_mid = box_y + box_h / 2
        _arrow(ax, (xs[k] + widths[k], y_mid), (xs[k + 1], y_mid))
    return fig
