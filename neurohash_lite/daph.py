"""DAPH: deep asymmetric pairwise hashing, with the two modalities as its two streams.

Shen et al. (2017) train two networks with *different* parameters, F and G,
whose outputs for a pair of images must reveal the pair's label similarity,
together with the bit-independence and bit-balance criteria, and binary codes
``B`` (F's side) and ``H`` (G's side) learned by an alternating algorithm. The
objective implemented here, over the ``n`` training items with relaxed codes
``U = tanh(F(X))`` and ``Z = tanh(G(X))`` (n x K) and binary codes ``B, H``, is
``J``, the sum of

- asymmetric pairwise likelihood: ``(1/n^2) sum_ij [softplus(Theta_ij) - s_ij Theta_ij]``, ``Theta_ij = 1/2 u_i^T z_j``;
- quantization: ``alpha (mean (U - B)^2 + mean (Z - H)^2)``;
- agreement of the two streams' codes: ``gamma mean (B - H)^2``;
- bit independence: ``lambda (mean (U^T U / n - I)^2 + mean (Z^T Z / n - I)^2)``;
- bit balance: ``beta (mean_k (sum_i U_ik)^2 + mean_k (sum_i Z_ik)^2)``;

with ``alpha = gamma = 10``, ``lambda = beta = 0.01``. It is minimised
alternately: an epoch of F's steps with G fixed (F's terms only), an epoch of
G's steps with F fixed, then the closed-form code step

``B = sign(alpha U + gamma H)``, then ``H = sign(alpha Z + gamma B)``,

each the exact minimiser of ``J`` over its codes with everything else fixed
(``J`` depends on ``B`` only through ``alpha ||U - B||^2 + gamma ||B - H||^2
= const - 2 tr(B^T (alpha U + gamma H))`` since ``b^2 = 1``), so the code step
never increases ``J``. ``U`` and ``Z`` of every training item are kept from
their last mini-batch, as the reference implementation does.

A property of these weights worth knowing: with ``alpha == gamma`` and
relaxed codes strictly inside (-1, 1), ``|alpha u| < |gamma h|``, so the
code step returns ``B = H`` and then ``H = B``: the codes never leave their
start. The reference implementation starts from random signs, so its
quantization term (weight 10) pulls each subject's two network codes
towards a random code of its own; in a smoke run (K = 16, 8 epochs) that
DAPH stayed at the random-codes floor. Here ``B`` and ``H`` start instead
from the pretrained streams, as the shared code ``sign(U + Z)`` of each
training subject (computed once before the first epoch), so the fixed
targets carry what pretraining learned. The weights stay the reference
implementation's; :func:`run` takes them as options.

Sources and what could not be reached
-------------------------------------
The paper's text could not be opened here (http://cfm.uestc.edu.cn/~fshen/DAPH.pdf
was not reachable, nor any copy). The objective, its weights, the alternation
and the code step are those of DeepHash-pytorch's ``DAPH.py``
(https://github.com/swuxyj/DeepHash-pytorch; its README says "not completely
implement here"), consistent with the description in Luo et al.'s survey
(2023, Section 3.2.2: two networks with different parameters, bit
independence, bit balance and quantization following SH-BDNN, the two
networks updated alternately). Whether the paper's pairwise term is this
likelihood or a squared inner-product fit could not be checked. Unlike the
reference implementation, ``B`` and ``H`` start from the pretrained streams
(above).

Changes for two modalities and three diagnoses
----------------------------------------------
- **The streams are the modalities**: F is the sMRI branch, G the PET branch
  (the reference feeds the same image to both). Each training subject is an
  item; its sMRI is F's input and its PET G's. ``B`` holds the sMRI codes and
  ``H`` the PET codes of the training subjects; ``gamma ||B - H||^2`` pulls a
  subject's two codes together.
- **Pairs**: in F's and G's steps, the batch's sMRI-PET pairs
  ``(u_i, z_j)``, ``s_ij = 1`` when the two diagnoses agree (a subject's own
  two scans are a positive pair); ``J`` is reported over all training pairs.
- **Codes for retrieval**: an sMRI scan is encoded by F, a PET scan by G (the
  reference retrieves with G alone; across modalities each stream encodes its
  own), ``sign`` of the relaxed code.
- **Budget**: an epoch is one pass of F's steps and one of G's, so the
  comparison's ``config.epochs`` epochs give each stream that many passes
  (about 4/3 of the cost of a joint pass, since the other stream runs forward
  only). The streams start from the seed's pretrained branches, as the
  pairwise methods do; each stream has its own Adam (the comparison's lr and
  weight decay); float32 throughout (no mixed precision); batch norms are
  recomputed on the training set at the end, as :func:`~neurohash_lite.train.fit` does.

References
----------
Shen F., Gao X., Liu L., Yang Y., Shen H. T. (2017). Deep Asymmetric Pairwise
Hashing. ACM Multimedia, 1522-1530.
Luo X. et al. (2023). A Survey on Deep Hashing Methods. ACM TKDD 17(1), Section 3.2.2.
Reference implementation: https://github.com/swuxyj/DeepHash-pytorch (``DAPH.py``:
``DAPHLoss.forward``, ``update_B_and_H``, ``calc_loss``, ``train_val``).
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .losses.ahs import _check_codes, cross_modal_batch
from .losses.dcmh import dcmh_likelihood_loss

__all__ = ["daph_independence_loss", "daph_balance_loss", "daph_code_update", "daph_objective", "DAPHLoss",
           "train_daph", "run"]

STREAMS = ("mri", "pet")


def _sign(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)


def daph_independence_loss(u: torch.Tensor) -> torch.Tensor:
    """``mean over the K x K entries of (U^T U / n - I)^2``: 0 for uncorrelated, unit-power bits.

    Parameters
    ----------
    u : torch.Tensor, float, shape (n, K)

    Returns
    -------
    torch.Tensor, scalar, >= 0

    References
    ----------
    DeepHash-pytorch ``DAPH.py`` (``independence_loss``); SH-BDNN's ``||H^T H / N - I||^2``.
    """
    _check_codes(u, "u")
    eye = torch.eye(u.shape[1], dtype=u.dtype, device=u.device)
    return (u.T @ u / u.shape[0] - eye).pow(2).mean()


def daph_balance_loss(u: torch.Tensor) -> torch.Tensor:
    """``mean over bits of (sum over items of u_ik)^2``: 0 when every bit is balanced.

    Not normalised by ``n``, as in the reference implementation: its size
    grows with the square of the batch size.

    Parameters
    ----------
    u : torch.Tensor, float, shape (n, K)

    Returns
    -------
    torch.Tensor, scalar, >= 0

    References
    ----------
    DeepHash-pytorch ``DAPH.py`` (``balance_loss``); SH-BDNN's ``||H^T 1||^2``.
    """
    _check_codes(u, "u")
    return u.sum(dim=0).pow(2).mean()


def daph_code_update(u: torch.Tensor, z: torch.Tensor, h: torch.Tensor, alpha: float = 10.0,
                     gamma: float = 10.0) -> tuple[torch.Tensor, torch.Tensor]:
    """DAPH's code step: ``B = sign(alpha U + gamma H)``, then ``H = sign(alpha Z + gamma B)``.

    Each is the exact minimiser of :func:`daph_objective` over its codes with
    the rest fixed; sign(0) = +1 (either sign is then a minimiser).

    Parameters
    ----------
    u, z : torch.Tensor, float, shape (n, K)
        The stored relaxed codes of the two streams.
    h : torch.Tensor, shape (n, K), values in {-1, +1}
        The current codes of the second stream.
    alpha, gamma : float

    Returns
    -------
    b, h : torch.Tensor, shape (n, K), values in {-1, +1}

    References
    ----------
    DeepHash-pytorch ``DAPH.py`` (``update_B_and_H``).
    """
    b = _sign(alpha * u + gamma * h.to(u.dtype))
    h = _sign(alpha * z + gamma * b)
    return b, h


def daph_objective(u, z, b, h, s, *, alpha=10.0, gamma=10.0, lam=0.01, beta=0.01) -> dict:
    """DAPH's full objective ``J`` over stored codes, term by term.

    Parameters
    ----------
    u, z : torch.Tensor, float, shape (n, K)
        Relaxed codes of the two streams.
    b, h : torch.Tensor, shape (n, K), values in {-1, +1}
    s : torch.Tensor, shape (n, n), values in {0, 1}
    alpha, gamma, lam, beta : float

    Returns
    -------
    dict of scalar tensors: ``likelihood``, ``quantization``, ``agreement``,
    ``independence``, ``balance`` (each already weighted) and ``total``.

    References
    ----------
    DeepHash-pytorch ``DAPH.py`` (``calc_loss``).
    """
    b, h = b.to(u.dtype), h.to(u.dtype)
    terms = {
        "likelihood": dcmh_likelihood_loss(u, z, s),
        "quantization": alpha * ((u - b).pow(2).mean() + (z - h).pow(2).mean()),
        "agreement": gamma * (b - h).pow(2).mean(),
        "independence": lam * (daph_independence_loss(u) + daph_independence_loss(z)),
        "balance": beta * (daph_balance_loss(u) + daph_balance_loss(z)),
    }
    terms["total"] = sum(terms.values())
    return terms


class DAPHLoss(nn.Module):
    """A mini-batch step's loss: the likelihood of the sMRI-PET pairs plus one or both streams' terms.

    ``stream="mri"``: ``lik + alpha mean(u_x - b)^2 + lambda ind(u_x) + beta bal(u_x)`` (F's step);
    ``stream="pet"``: the same with ``u_y`` and ``h`` (G's step);
    ``stream=None``: the likelihood plus both streams' terms.

    Parameters
    ----------
    n_bits : int
    alpha : float, default 10.0
        Quantization weight.
    gamma : float, default 10.0
        Weight of ``||B - H||^2`` (used by the code step only; it does not
        depend on the networks).
    lam : float, default 0.01
        Bit-independence weight.
    beta : float, default 0.01
        Bit-balance weight.

    Shapes
    ------
    ``forward(u_x, u_y, labels_x, labels_y=None, *, b=None, h=None, stream=None)``:
    ``b`` and ``h`` are the stored codes of the batch's rows ((n, K), +-1);
    when not given, each stream's own detached sign is its target. Returns
    ``(total, parts)``, parts ``likelihood``, ``quantization``,
    ``independence``, ``balance`` (unweighted).

    References
    ----------
    DeepHash-pytorch ``DAPH.py`` (``DAPHLoss.forward``, ``isTop``).
    """

    def __init__(self, n_bits: int, alpha: float = 10.0, gamma: float = 10.0, lam: float = 0.01,
                 beta: float = 0.01) -> None:
        super().__init__()
        if int(n_bits) != n_bits or n_bits < 1:
            raise ValueError(f"n_bits must be a positive integer, got {n_bits!r}")
        for name, value in (("alpha", alpha), ("gamma", gamma), ("lam", lam), ("beta", beta)):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        self.n_bits, self.alpha, self.gamma = int(n_bits), float(alpha), float(gamma)
        self.lam, self.beta = float(lam), float(beta)

    def forward(self, u_x, u_y, labels_x, labels_y=None, *, b=None, h=None, stream=None):
        u_x, u_y, _, _, s = cross_modal_batch(u_x, u_y, labels_x, labels_y)
        if u_x.shape[1] != self.n_bits:
            raise ValueError(f"codes have K={u_x.shape[1]} bits (code length), the loss was built for {self.n_bits}")
        if stream not in (None, *STREAMS):
            raise ValueError(f"stream={stream!r} must be None, 'mri' or 'pet'")
        b = _sign(u_x.detach()) if b is None else b.to(u_x.dtype)
        h = _sign(u_y.detach()) if h is None else h.to(u_y.dtype)
        if b.shape != u_x.shape or h.shape != u_y.shape:
            raise ValueError(f"b and h must have the codes' shapes {tuple(u_x.shape)} and {tuple(u_y.shape)}")
        likelihood = dcmh_likelihood_loss(u_x, u_y, s)
        sides = {"mri": (u_x, b), "pet": (u_y, h)}
        chosen = STREAMS if stream is None else (stream,)
        quantization = sum((sides[m][0] - sides[m][1]).pow(2).mean() for m in chosen)
        independence = sum(daph_independence_loss(sides[m][0]) for m in chosen)
        balance = sum(daph_balance_loss(sides[m][0]) for m in chosen)
        total = likelihood + self.alpha * quantization + self.lam * independence + self.beta * balance
        return total, {"likelihood": likelihood.detach(), "quantization": quantization.detach(),
                       "independence": independence.detach(), "balance": balance.detach()}

    def extra_repr(self) -> str:
        return f"n_bits={self.n_bits}, alpha={self.alpha}, gamma={self.gamma}, lam={self.lam}, beta={self.beta}"


class _Indexed(Dataset):
    """``(item, mri, pet, label)``: a paired dataset's items with their position (for the stored codes)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, item):
        return (item, *self.dataset[item])


def _forward_both(model, batch):
    # BN recalibration: the same forward pass as training (both branches on their modality)
    mri, pet = batch[0], batch[1]
    return model(mri, pet), {}


def train_daph(model, dataset, loss: DAPHLoss, config, *, labels=None) -> dict:
    """DAPH's alternating optimisation of a two-branch network.

    Parameters
    ----------
    model : CrossModalHashNet
        ``mri_branch`` is the stream F, ``pet_branch`` the stream G.
    dataset : Dataset
        Paired training set yielding ``(mri, pet, label)``.
    loss : DAPHLoss
    config : TrainConfig
        ``epochs``, ``batch_size``, ``lr``, ``weight_decay``, ``seed``,
        ``device`` are used (no validation, no mixed precision).
    labels : array-like, optional
        The training labels in the dataset's order (default: read from the dataset).

    Returns
    -------
    dict
        ``objective``: ``J`` (:func:`daph_objective`) after each epoch's code
        step, as floats; ``seconds``; ``epochs``; ``b``, ``h``: the final codes.
    """
    from .runtime import select_device, seed_everything
    from .train import recalibrate_batch_norm

    device = select_device(config.device, warn=False)
    generator = seed_everything(config.seed)
    model.to(device)
    n, k = len(dataset), loss.n_bits
    if labels is None:
        labels = [dataset[i][-1] for i in range(n)]
    labels = torch.as_tensor(labels, device=device)
    s_all = (labels[:, None] == labels[None, :]).float()
    stored = {"mri": torch.zeros(n, k, device=device), "pet": torch.zeros(n, k, device=device)}
    branches = {"mri": model.mri_branch, "pet": model.pet_branch}
    # B and H start from the (pretrained) streams, as one shared code sign(U + Z): with alpha == gamma the
    # code step cannot move away from its start (see the module docstring), so a random start, the
    # reference implementation's, would make DAPH learn random targets
    model.eval()
    with torch.no_grad():
        for item, mri, pet, _ in DataLoader(_Indexed(dataset), batch_size=config.batch_size, shuffle=False):
            stored["mri"][item.to(device)] = branches["mri"](mri.to(device)).float()
            stored["pet"][item.to(device)] = branches["pet"](pet.to(device)).float()
    shared = _sign(stored["mri"] + stored["pet"])
    codes = {"mri": shared.clone(), "pet": shared.clone()}
    optimisers = {m: torch.optim.Adam(branches[m].parameters(), lr=config.lr, weight_decay=config.weight_decay)
                  for m in STREAMS}
    loader = DataLoader(_Indexed(dataset), batch_size=config.batch_size, shuffle=True, generator=generator,
                        drop_last=n > config.batch_size)
    history, started = [], time.perf_counter()
    for _ in range(config.epochs):
        for stream in STREAMS:
            other = "pet" if stream == "mri" else "mri"
            model.train()
            branches[other].eval()
            for item, mri, pet, y in loader:
                item, y = item.to(device), y.to(device)
                inputs = {"mri": mri.to(device), "pet": pet.to(device)}
                out = {stream: branches[stream](inputs[stream])}
                with torch.no_grad():
                    out[other] = branches[other](inputs[other])
                total, _ = loss(out["mri"], out["pet"], y, b=codes["mri"][item], h=codes["pet"][item], stream=stream)
                optimisers[stream].zero_grad(set_to_none=True)
                total.backward()
                optimisers[stream].step()
                for m in STREAMS:
                    stored[m][item] = out[m].detach().float()
        codes["mri"], codes["pet"] = daph_code_update(stored["mri"], stored["pet"], codes["pet"],
                                                      loss.alpha, loss.gamma)
        with torch.no_grad():
            terms = daph_objective(stored["mri"], stored["pet"], codes["mri"], codes["pet"], s_all, alpha=loss.alpha,
                                   gamma=loss.gamma, lam=loss.lam, beta=loss.beta)
        history.append(float(terms["total"]))
    recalibrate_batch_norm(model, _forward_both, dataset, batch_size=config.batch_size, device=device)
    model.eval()
    return {"objective": history, "seconds": time.perf_counter() - started, "epochs": config.epochs,
            "b": codes["mri"].cpu(), "h": codes["pet"].cpu()}


def run(context, n_bits: int, *, alpha: float = 10.0, gamma: float = 10.0, lam: float = 0.01, beta: float = 0.01):
    """The comparison's entry point: DAPH's alternating training on the seed's pretrained branches.

    ``config.epochs`` epochs, each one pass of the sMRI stream's steps, one
    of the PET stream's and the code step; the last epoch is kept.

    Parameters
    ----------
    context : neurohash_lite.runner.RunContext
    n_bits : int
    alpha, gamma, lam, beta : float
        The weights of :class:`DAPHLoss` (defaults: the reference
        implementation's). With ``alpha == gamma`` the code step keeps the
        initial codes (see the module docstring); ``gamma=0`` makes each
        stream's codes its own signs.

    Returns
    -------
    neurohash_lite.runner.MethodRun
    """
    from .runner import MethodRun, pretrained_network, shared_hyperparameters, deep_codes, train_config

    data = context.data
    model = pretrained_network(context, n_bits)
    loss = DAPHLoss(n_bits, alpha=alpha, gamma=gamma, lam=lam, beta=beta)
    labels = data.train.labels[data.train.indices]
    result = train_daph(model, data.train, loss, train_config(context, context.config.epochs), labels=labels)
    hyper = {"loss": "DAPHLoss", "alpha": loss.alpha, "gamma": loss.gamma, "lambda": loss.lam, "beta": loss.beta,
             "streams": "F = sMRI branch, G = PET branch", "alternation": "per epoch: F pass, G pass, code step",
             "code_init": "sign(U + Z) of the pretrained streams", "precision": "float32", "objective_per_epoch": result["objective"],
             **shared_hyperparameters(context)}
    return MethodRun(deep_codes(model, data, context.device), data.pretrain_seconds + result["seconds"],
                     result["epochs"], hyper)
