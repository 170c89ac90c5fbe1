"""An explorer of the Hamming space of trained cross-modal codes.

:class:`HammingExplorer` holds, for one or more code lengths K, the ±1 codes
of every subject's sMRI and FDG-PET scan, their diagnoses, subject ids and one
thumbnail per scan. A *query* is one scan (subject, modality); it is compared
with the scans of the *other* modality of every other subject (the query's own
subject is left out, so that its paired scan cannot trivially come first).

Every view is a plain method over plain arrays (tests call them without a
browser), draws its current state as a static matplotlib figure (the built
book and a PDF show it without a kernel), and :meth:`HammingExplorer.widget`
wires the same methods to ipywidgets controls for a live kernel.

Views
-----
- neighbours: the top-k codes by Hamming distance, ties by database order
  (:class:`neurohash_lite.retrieval.HammingIndex`);
- radius: the Hamming ball of radius r around the query, its counts and the
  precision and recall of hash lookup at r, on the query's PR-by-radius curve
  (:func:`neurohash_lite.metrics.pr_curve_hamming_radius`);
- map: a 2-D map of all codes by classical MDS on the Hamming distances;
- bits: how often each bit is +1 per class, and the bit-bit correlations;
- cube: for K = 3, every code at its corner of {-1, +1}^3.

Two interactive explorers read the same precomputed state
(:meth:`HammingExplorer.browser_data`: packed codes per K, labels, ids, map
coordinates per K, thumbnails, the selection):

- :meth:`HammingExplorer.browser_view`, a standalone Bokeh document whose
  controls recompute every view in the browser (``explorer.js``, next to this
  file), so it answers on a static HTML page with no kernel behind it;
- :meth:`HammingExplorer.widget`, ipywidgets over the ``plot_*`` methods, for
  a live kernel (Jupyter, Colab), where Python can do more than the page
  (encode a new scan, add a view).
"""

from __future__ import annotations

from dataclasses import dataclass

import base64
import html
import io
import json
import re
from pathlib import Path

import numpy as np

from neurohash_lite import metrics
from neurohash_lite.retrieval import HammingIndex, check_codes, pack_codes

#: The browser half of the explorer (XOR + popcount, top-k, histogram, PR by radius, the view).
EXPLORER_JS = Path(__file__).with_name("explorer.js")

__all__ = ["CLASS_NAMES", "MODALITIES", "Neighbours", "RadiusReport", "classical_mds", "HammingExplorer"]

#: Diagnosis names by label.
CLASS_NAMES = ("NC", "MCI", "AD")
#: The two modalities, in the order codes are given.
MODALITIES = ("mri", "pet")
_MODALITY_NAMES = {"mri": "sMRI", "pet": "PET"}
_CLASS_COLOURS = ("tab:blue", "tab:orange", "tab:red")
_CLASS_HEX = ("#1f77b4", "#ff7f0e", "#d62728")     # the same colours, for the browser
_MODALITY_MARKERS = {"mri": "o", "pet": "^"}


@dataclass(frozen=True)
class Neighbours:
    """The top-k neighbours of one query.

    Attributes
    ----------
    indices : ndarray (k,), int64
        Subject rows (into the explorer's arrays) of the retrieved scans, which
        are of the other modality; sorted by distance, ties by row.
    distances : ndarray (k,), int64
        Their Hamming distances to the query, 0..K, non-decreasing.
    labels : ndarray (k,), int64
        Their diagnoses.
    relevant : ndarray (k,), bool
        Same diagnosis as the query.
    subject_ids : ndarray (k,), str
    """

    indices: np.ndarray
    distances: np.ndarray
    labels: np.ndarray
    relevant: np.ndarray
    subject_ids: np.ndarray


@dataclass(frozen=True)
class RadiusReport:
    """Hash lookup within Hamming radius r of one query.

    Attributes
    ----------
    radius : int
    inside : ndarray (m,), int64
        Subject rows of the other-modality scans with d_H <= radius.
    n_inside, n_relevant_inside, n_relevant : int
        Scans inside the ball, relevant ones inside it, relevant ones in the
        whole database.
    precision, recall : float
        At this radius (precision is NaN when the ball is empty).
    radii, precision_curve, recall_curve : ndarray (K + 1,)
        The query's whole PR-by-radius curve.
    """

    radius: int
    inside: np.ndarray
    n_inside: int
    n_relevant_inside: int
    n_relevant: int
    precision: float
    recall: float
    radii: np.ndarray
    precision_curve: np.ndarray
    recall_curve: np.ndarray


class _HTMLView:
    """An HTML fragment that notebooks display as such (``data`` holds the HTML)."""

    def __init__(self, data: str):
        self.data = data

    def _repr_html_(self) -> str:
        return self.data


def classical_mds(distances, n_components: int = 2) -> np.ndarray:
    """Classical (Torgerson) multidimensional scaling of a distance matrix.

    With J = I - 11ᵀ/n, B = -½ J D⁽²⁾ J (D⁽²⁾ the squared distances); the
    coordinates are the top eigenvectors of B scaled by the square roots of
    their (positive) eigenvalues. Each axis's sign is fixed so that its
    largest-magnitude coordinate is positive, which makes the result a
    function of the distances alone.

    Parameters
    ----------
    distances : array_like, shape (n, n)
        Symmetric, non-negative, zero diagonal (here Hamming distances, bits).
    n_components : int

    Returns
    -------
    ndarray (n, n_components), float64
        Coordinates in the units of the distances; an axis whose eigenvalue
        is not positive is all zeros.

    References
    ----------
    Torgerson (1952); Borg & Groenen, *Modern Multidimensional Scaling* (2005), ch. 12.
    """
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"distances must be a square matrix; got shape {d.shape}")
    if not np.allclose(d, d.T) or (d < 0).any():
        raise ValueError("distances must be symmetric and non-negative")
    n = len(d)
    centre = np.eye(n) - 1.0 / n
    b = -0.5 * centre @ (d ** 2) @ centre
    values, vectors = np.linalg.eigh((b + b.T) / 2)
    order = np.argsort(values)[::-1][:n_components]
    values, vectors = values[order], vectors[:, order]
    coords = vectors * np.sqrt(np.clip(values, 0.0, None))
    for axis in range(coords.shape[1]):
        column = coords[:, axis]
        if column[np.argmax(np.abs(column))] < 0:
            coords[:, axis] = -column
    if coords.shape[1] < n_components:
        coords = np.hstack([coords, np.zeros((n, n_components - coords.shape[1]))])
    return coords


class HammingExplorer:
    """Codes of both modalities at several K, with every view of Chapter 8.

    Parameters
    ----------
    codes : dict[int, tuple[array_like, array_like]]
        For each code length K: (sMRI codes, PET codes), each (n, K) ±1, row i
        being subject i.
    labels : array_like (n,), int
        Diagnoses, 0 NC, 1 MCI, 2 AD.
    subject_ids : array_like (n,), str
    thumbnails : dict[str, array_like], optional
        ``{"mri": (n, H, W), "pet": (n, H, W)}`` float images, one per scan.
    k : int
        Neighbours shown (clipped to n - 1).
    seed : int
        Seeds the jitter of the map and cube views (many codes coincide).

    The selection (query, modality, K, radius) lives in :attr:`state`; the
    view methods take it as defaults and can be given any other.
    """

    def __init__(self, codes: dict, labels, subject_ids, thumbnails: dict | None = None, *,
                 k: int = 5, seed: int = 0):
        if not isinstance(codes, dict) or not codes:
            raise ValueError("codes must be a non-empty dict {K: (mri_codes, pet_codes)}")
        self.labels = np.asarray(labels)
        if self.labels.ndim != 1 or self.labels.dtype.kind not in "iu":
            raise ValueError(f"labels must be a 1-D integer array; got {self.labels.dtype} {self.labels.shape}")
        self.labels = self.labels.astype(np.int64)
        n = len(self.labels)
        if n < 2:
            raise ValueError("labels: the explorer needs at least two subjects")
        self.subject_ids = np.asarray(subject_ids).astype(str)
        if self.subject_ids.shape != (n,):
            raise ValueError(f"subject_ids must have shape ({n},); got {self.subject_ids.shape}")
        self.codes = {}
        for n_bits, pair in sorted(codes.items()):
            if len(pair) != 2:
                raise ValueError(f"codes[{n_bits}] must be a pair (mri_codes, pet_codes)")
            mri, pet = (check_codes(c, f"codes[{n_bits}][{j}]").astype(np.int8) for j, c in enumerate(pair))
            for name, array in (("mri", mri), ("pet", pet)):
                if array.shape != (n, n_bits):
                    raise ValueError(f"codes[{n_bits}] {name} codes must have shape ({n}, {n_bits}); got {array.shape}")
            self.codes[int(n_bits)] = {"mri": mri, "pet": pet}
        self.thumbnails = None
        if thumbnails is not None:
            self.thumbnails = {m: np.asarray(thumbnails[m], dtype=np.float32) for m in MODALITIES}
            for m, images in self.thumbnails.items():
                if images.ndim != 3 or len(images) != n:
                    raise ValueError(f"thumbnails[{m!r}] must have shape ({n}, H, W); got {images.shape}")
        self.k = int(min(max(1, k), n - 1))
        self.seed = int(seed)
        self._mds: dict[int, np.ndarray] = {}
        self.state = {"query": 0, "modality": "mri", "n_bits": min(self.codes), "radius": 0}
        self.state["radius"] = self.state["n_bits"] // 4

    # ------------------------------------------------------------------
    # Selection
    # ------------------------------------------------------------------
    @property
    def bit_lengths(self) -> tuple[int, ...]:
        return tuple(self.codes)

    def select(self, *, query: int | None = None, modality: str | None = None,
               n_bits: int | None = None, radius: int | None = None) -> dict:
        """Change the selection; return the new state.

        Switching K keeps the query and modality; the radius is clipped to 0..K.
        """
        state = dict(self.state)
        if query is not None:
            state["query"] = self._check_query(query)
        if modality is not None:
            state["modality"] = self._check_modality(modality)
        if n_bits is not None:
            state["n_bits"] = self._check_bits(n_bits)
        if radius is not None:
            if int(radius) != radius or radius < 0:
                raise ValueError(f"radius={radius!r} must be a non-negative integer")
            state["radius"] = int(radius)
        state["radius"] = min(state["radius"], state["n_bits"])
        self.state = state
        return dict(state)

    def _check_query(self, query) -> int:
        if int(query) != query or not 0 <= query < len(self.labels):
            raise ValueError(f"query={query!r} must be a subject row in 0..{len(self.labels) - 1}")
        return int(query)

    def _check_modality(self, modality) -> str:
        if modality not in MODALITIES:
            raise ValueError(f"modality={modality!r} must be one of {MODALITIES}")
        return modality

    def _check_bits(self, n_bits) -> int:
        if n_bits not in self.codes:
            raise ValueError(f"n_bits={n_bits!r}: the explorer has codes for K in {self.bit_lengths}")
        return int(n_bits)

    def _resolve(self, query, modality, n_bits):
        query = self.state["query"] if query is None else self._check_query(query)
        modality = self.state["modality"] if modality is None else self._check_modality(modality)
        n_bits = self.state["n_bits"] if n_bits is None else self._check_bits(n_bits)
        return query, modality, n_bits

    def _database(self, query: int, modality: str, n_bits: int):
        """The query code, the other modality's codes without the query's subject, and their rows."""
        other = "pet" if modality == "mri" else "mri"
        rows = np.delete(np.arange(len(self.labels)), query)
        return self.codes[n_bits][modality][query], self.codes[n_bits][other][rows], rows

    # ------------------------------------------------------------------
    # Views as plain functions
    # ------------------------------------------------------------------
    def neighbours(self, query: int | None = None, modality: str | None = None,
                   n_bits: int | None = None, k: int | None = None) -> Neighbours:
        """Top-k scans of the other modality by Hamming distance, ties by subject row."""
        query, modality, n_bits = self._resolve(query, modality, n_bits)
        k = self.k if k is None else int(k)
        code, database, rows = self._database(query, modality, n_bits)
        if not 1 <= k <= len(rows):
            raise ValueError(f"k={k} must lie in 1..{len(rows)}")
        index = HammingIndex(n_bits, backend="numpy")
        index.add(database)
        found, distances = index.search(code[None, :], k)
        indices = rows[found[0]]
        labels = self.labels[indices]
        return Neighbours(indices=indices, distances=distances[0].astype(np.int64), labels=labels,
                          relevant=labels == self.labels[query], subject_ids=self.subject_ids[indices])

    def radius_report(self, radius: int | None = None, query: int | None = None, modality: str | None = None,
                      n_bits: int | None = None) -> RadiusReport:
        """Counts, precision and recall of hash lookup at Hamming radius r."""
        query, modality, n_bits = self._resolve(query, modality, n_bits)
        radius = self.state["radius"] if radius is None else int(radius)
        if not 0 <= radius <= n_bits:
            raise ValueError(f"radius={radius} must lie in 0..{n_bits}")
        code, database, rows = self._database(query, modality, n_bits)
        db_labels = self.labels[rows]
        distances = metrics.hamming_distance(code, database).astype(np.int64)
        radii, precision, recall = metrics.pr_curve_hamming_radius(code, database, self.labels[query], db_labels)
        inside = distances <= radius
        relevant = db_labels == self.labels[query]
        return RadiusReport(radius=radius, inside=rows[inside], n_inside=int(inside.sum()),
                            n_relevant_inside=int((inside & relevant).sum()), n_relevant=int(relevant.sum()),
                            precision=float(precision[radius]), recall=float(recall[radius]),
                            radii=radii, precision_curve=precision, recall_curve=recall)

    def all_codes(self, n_bits: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every code at K: (2n, K) codes (sMRI rows first), their labels and modalities."""
        n_bits = self.state["n_bits"] if n_bits is None else self._check_bits(n_bits)
        n = len(self.labels)
        codes = np.concatenate([self.codes[n_bits]["mri"], self.codes[n_bits]["pet"]])
        return codes, np.tile(self.labels, 2), np.repeat(np.array(MODALITIES), n)

    def code_map(self, n_bits: int | None = None, seed: int | None = None, jitter: float = 0.15) -> np.ndarray:
        """2-D coordinates of all 2n codes: classical MDS on their Hamming distances.

        Coordinates are in bits; scans with identical codes share a point, so
        each gets a small Gaussian jitter (``jitter`` bits, seeded) to be seen.

        Returns
        -------
        ndarray (2n, 2), float64; rows 0..n-1 the sMRI scans, n..2n-1 the PET scans.
        """
        n_bits = self.state["n_bits"] if n_bits is None else self._check_bits(n_bits)
        if n_bits not in self._mds:      # the jitter-free map depends on the codes alone
            codes, _, _ = self.all_codes(n_bits)
            self._mds[n_bits] = classical_mds(metrics.hamming_distance(codes, codes).astype(np.float64))
        coords = self._mds[n_bits]
        rng = np.random.default_rng(self.seed if seed is None else seed)
        return coords + rng.normal(scale=jitter, size=coords.shape)

    def bit_balance(self, n_bits: int | None = None) -> np.ndarray:
        """Share of codes (both modalities) with bit j = +1, per class: (3, K) float64 (NaN for an absent class)."""
        codes, labels, _ = self.all_codes(n_bits)
        return np.array([(codes[labels == c] > 0).mean(axis=0) if (labels == c).any()
                         else np.full(codes.shape[1], np.nan) for c in range(len(CLASS_NAMES))])

    def bit_correlation(self, n_bits: int | None = None) -> np.ndarray:
        """Pearson correlation between bits over all codes: (K, K) float64, NaN for a constant bit."""
        codes, _, _ = self.all_codes(n_bits)
        x = codes.astype(np.float64) - codes.mean(axis=0)
        scale = np.sqrt((x ** 2).sum(axis=0))
        with np.errstate(invalid="ignore", divide="ignore"):
            return (x.T @ x) / np.outer(scale, scale)

    # ------------------------------------------------------------------
    # Static figures
    # ------------------------------------------------------------------
    def _query_title(self, query, modality, n_bits) -> str:
        return (f"query {self.subject_ids[query]} ({_MODALITY_NAMES[modality]}, "
                f"{CLASS_NAMES[self.labels[query]]}), K = {n_bits}")

    def plot_neighbours(self, query=None, modality=None, n_bits=None, k=None):
        """Figure: the query's thumbnail and its top-k neighbours' thumbnails."""
        import matplotlib.pyplot as plt

        query, modality, n_bits = self._resolve(query, modality, n_bits)
        found = self.neighbours(query, modality, n_bits, k)
        other = "pet" if modality == "mri" else "mri"
        fig, axes = plt.subplots(1, len(found.indices) + 1, figsize=(2.1 * (len(found.indices) + 1), 2.6))
        panels = [(query, modality, f"QUERY {_MODALITY_NAMES[modality]}\n{CLASS_NAMES[self.labels[query]]}", "black")]
        for rank, (row, dist, rel) in enumerate(zip(found.indices, found.distances, found.relevant), start=1):
            mark = "✓ relevant" if rel else "✗ not relevant"
            panels.append((row, other, f"#{rank} {_MODALITY_NAMES[other]} {CLASS_NAMES[self.labels[row]]}\n"
                                       f"d_H = {dist} bits, {mark}", "tab:green" if rel else "tab:red"))
        for ax, (row, mod, title, colour) in zip(axes, panels):
            if self.thumbnails is not None:
                ax.imshow(self.thumbnails[mod][row], cmap="gray" if mod == "mri" else "hot", origin="upper")
            ax.set_title(title, fontsize=8, color=colour)
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_color(colour)
                spine.set_linewidth(2)
        fig.suptitle(f"Top-{len(found.indices)} neighbours of {self._query_title(query, modality, n_bits)}", fontsize=10)
        fig.tight_layout()
        return fig

    def plot_radius(self, radius=None, query=None, modality=None, n_bits=None):
        """Figure: distance histogram with the ball's edge, and the PR-by-radius curve with r marked."""
        import matplotlib.pyplot as plt

        query, modality, n_bits = self._resolve(query, modality, n_bits)
        report = self.radius_report(radius, query, modality, n_bits)
        code, database, rows = self._database(query, modality, n_bits)
        distances = metrics.hamming_distance(code, database).astype(np.int64)
        relevant = self.labels[rows] == self.labels[query]
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
        bins = np.arange(n_bits + 2) - 0.5
        left.hist([distances[relevant], distances[~relevant]], bins=bins, stacked=True,
                  color=["tab:green", "tab:grey"], label=["relevant (same diagnosis)", "not relevant"])
        left.axvline(report.radius + 0.5, color="black", ls="--", label=f"ball edge, r = {report.radius}")
        left.set(title=f"{report.n_inside} codes within r = {report.radius} "
                       f"({report.n_relevant_inside} relevant)", xlabel="Hamming distance to the query (bits)",
                 ylabel="scans of the other modality")
        left.legend(fontsize=8)
        right.plot(report.recall_curve, report.precision_curve, marker=".", color="tab:blue", label="this query, r = 0..K")
        if np.isfinite(report.precision):
            right.plot(report.recall, report.precision, "o", ms=10, color="black",
                       label=f"r = {report.radius}: P = {report.precision:.2f}, R = {report.recall:.2f}")
        right.set(title=f"PR by Hamming radius, {self._query_title(query, modality, n_bits)}", xlabel="recall",
                  ylabel="precision", xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))
        right.title.set_fontsize(9)
        right.legend(fontsize=8)
        fig.tight_layout()
        return fig

    def plot_map(self, query=None, modality=None, n_bits=None):
        """Figure: the MDS map of all codes with the query, its neighbours and lines to them."""
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D

        query, modality, n_bits = self._resolve(query, modality, n_bits)
        coords = self.code_map(n_bits)
        _, labels, modalities = self.all_codes(n_bits)
        n = len(self.labels)
        fig, ax = plt.subplots(figsize=(6.5, 5.5))
        for m in MODALITIES:
            for c, name in enumerate(CLASS_NAMES):
                pick = (modalities == m) & (labels == c)
                ax.scatter(coords[pick, 0], coords[pick, 1], s=22, alpha=0.6, c=_CLASS_COLOURS[c],
                           marker=_MODALITY_MARKERS[m], edgecolors="none")
        q = query + (0 if modality == "mri" else n)
        found = self.neighbours(query, modality, n_bits)
        offset = n if modality == "mri" else 0
        for row in found.indices:
            ax.plot(*zip(coords[q], coords[row + offset]), color="black", lw=0.8)
            ax.scatter(*coords[row + offset], s=80, facecolors="none", edgecolors="black")
        ax.scatter(*coords[q], s=250, marker="*", c="gold", edgecolors="black", zorder=5)
        handles = [Line2D([], [], ls="", marker="s", color=col, label=name) for name, col in zip(CLASS_NAMES, _CLASS_COLOURS)]
        handles += [Line2D([], [], ls="", marker=_MODALITY_MARKERS[m], color="grey", label=_MODALITY_NAMES[m]) for m in MODALITIES]
        handles += [Line2D([], [], ls="", marker="*", color="gold", markeredgecolor="black", ms=12, label="query"),
                    Line2D([], [], color="black", lw=0.8, label=f"to its top-{len(found.indices)}")]
        ax.legend(handles=handles, fontsize=8, loc="best")
        ax.set(title=f"All codes, classical MDS on Hamming distances (K = {n_bits})",
               xlabel="MDS axis 1 (bits)", ylabel="MDS axis 2 (bits)")
        fig.tight_layout()
        return fig

    def plot_bits(self, n_bits=None):
        """Figure: share of +1 per bit and class, and the bit-bit correlation matrix."""
        import matplotlib.pyplot as plt

        n_bits = self.state["n_bits"] if n_bits is None else self._check_bits(n_bits)
        balance, corr = self.bit_balance(n_bits), self.bit_correlation(n_bits)
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [1.6, 1]})
        width = 0.8 / len(CLASS_NAMES)
        for c, name in enumerate(CLASS_NAMES):
            left.bar(np.arange(n_bits) + (c - 1) * width, balance[c], width=width, color=_CLASS_COLOURS[c], label=name)
        left.axhline(0.5, color="black", ls="--", lw=0.8, label="balanced (½)")
        left.set(title=f"How often each bit is +1, per diagnosis (K = {n_bits})", xlabel="bit j",
                 ylabel="share of codes with b_j = +1", ylim=(0, 1))
        left.legend(fontsize=8, ncol=4)
        image = right.imshow(corr, cmap="RdBu_r", vmin=-1, vmax=1)
        right.set(title="Bit-bit correlation (all codes)", xlabel="bit j", ylabel="bit i")
        fig.colorbar(image, ax=right, label="Pearson correlation")
        fig.tight_layout()
        return fig

    def plot_cube(self, query=None, modality=None):
        """Figure (K = 3 only): every code at its corner of the cube {-1, +1}^3, jittered."""
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D

        if 3 not in self.codes:
            raise ValueError(f"the cube view needs K = 3 codes; the explorer has K in {self.bit_lengths}")
        query, modality, _ = self._resolve(query, modality, 3)
        codes, labels, modalities = self.all_codes(3)
        rng = np.random.default_rng(self.seed)
        points = codes + rng.normal(scale=0.07, size=codes.shape)
        fig = plt.figure(figsize=(6, 5.5))
        ax = fig.add_subplot(projection="3d")
        corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])
        for a in corners:
            for b in corners:
                if (a < b).sum() == 1 and (a != b).sum() == 1:
                    ax.plot(*zip(a, b), color="grey", lw=0.6)
        for m in MODALITIES:
            for c in range(len(CLASS_NAMES)):
                pick = (modalities == m) & (labels == c)
                ax.scatter(*points[pick].T, s=14, alpha=0.6, c=_CLASS_COLOURS[c], marker=_MODALITY_MARKERS[m])
        q = query + (0 if modality == "mri" else len(self.labels))
        ax.scatter(*points[q], s=200, marker="*", c="gold", edgecolors="black")
        handles = [Line2D([], [], ls="", marker="s", color=col, label=name) for name, col in zip(CLASS_NAMES, _CLASS_COLOURS)]
        handles += [Line2D([], [], ls="", marker=_MODALITY_MARKERS[m], color="grey", label=_MODALITY_NAMES[m]) for m in MODALITIES]
        handles.append(Line2D([], [], ls="", marker="*", color="gold", markeredgecolor="black", ms=12, label="query"))
        ax.legend(handles=handles, fontsize=8, loc="upper left")
        ax.set(title="K = 3: every code at its corner (jittered)", xlabel="bit 1", ylabel="bit 2", zlabel="bit 3",
               xticks=[-1, 1], yticks=[-1, 1], zticks=[-1, 1])
        return fig

    def corner_counts(self) -> dict[tuple[int, int, int], np.ndarray]:
        """For K = 3: per corner, the number of codes of each class, ``{corner: (3,) int64}``."""
        if 3 not in self.codes:
            raise ValueError(f"corner counts need K = 3 codes; the explorer has K in {self.bit_lengths}")
        codes, labels, _ = self.all_codes(3)
        result = {}
        for corner in [(x, y, z) for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]:
            at = (codes == np.array(corner)).all(axis=1)
            result[corner] = np.bincount(labels[at], minlength=len(CLASS_NAMES))
        return result

    # ------------------------------------------------------------------
    # The kernel-free explorer (Bokeh + explorer.js)
    # ------------------------------------------------------------------
    def browser_data(self, thumbnail_size: int = 40, digits: int = 3) -> dict:
        """Everything the browser explorer needs, precomputed here, as JSON-ready data.

        The browser computes the rest (``explorer.js``): distances by XOR and
        popcount of the packed codes, the top-k with ties in subject order,
        the distance histogram and precision and recall by radius.

        Parameters
        ----------
        thumbnail_size : int
            Thumbnails are shrunk (never enlarged) to at most this many pixels
            a side, as PNG data URIs (sMRI grey, PET in the ``hot`` map, each
            modality on one intensity scale).
        digits : int
            Decimals kept of the map coordinates (bits).

        Returns
        -------
        dict
            ``n``, ``k``, ``labels`` (n,), ``ids`` (n,), ``class_names``,
            ``bits`` (the K, ascending), ``codes[str(K)][modality]`` (base64 of
            :func:`~neurohash_lite.retrieval.pack_codes`, (n, ceil(K/8)) bytes),
            ``map[str(K)]`` (``x``, ``y``: the :meth:`code_map` of all 2n codes),
            ``thumbs[modality]`` (n data URIs, empty strings without thumbnails)
            and ``state`` (the current selection).
        """
        n = len(self.labels)
        codes, maps = {}, {}
        for n_bits in self.bit_lengths:
            codes[str(n_bits)] = {m: base64.b64encode(pack_codes(self.codes[n_bits][m]).tobytes()).decode("ascii")
                                  for m in MODALITIES}
            coords = np.round(self.code_map(n_bits), digits)
            maps[str(n_bits)] = {"x": coords[:, 0].tolist(), "y": coords[:, 1].tolist()}
        return {"n": n, "k": self.k, "labels": self.labels.tolist(), "ids": self.subject_ids.tolist(),
                "class_names": list(CLASS_NAMES), "bits": list(self.bit_lengths), "codes": codes, "map": maps,
                "thumbs": self._thumbnail_uris(thumbnail_size), "state": dict(self.state)}

    def _thumbnail_uris(self, size: int) -> dict:
        if self.thumbnails is None:
            return {m: [""] * len(self.labels) for m in MODALITIES}
        import matplotlib
        from PIL import Image

        uris = {}
        for m in MODALITIES:
            images = self.thumbnails[m]
            low, high = float(np.min(images)), float(np.max(images))
            scaled = np.clip((images - low) / max(high - low, 1e-12) * 255, 0, 255).astype(np.uint8)
            palette = (matplotlib.colormaps["gray" if m == "mri" else "hot"](np.arange(256))[:, :3] * 255)
            palette = palette.astype(np.uint8).ravel().tolist()
            uris[m] = []
            for image in scaled:
                picture = Image.fromarray(image, mode="L")
                if max(picture.size) > size:
                    picture.thumbnail((size, size), Image.Resampling.BILINEAR)
                picture = picture.convert("P")
                picture.putpalette(palette)
                buffer = io.BytesIO()
                picture.save(buffer, format="PNG", optimize=True)
                uris[m].append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"))
        return uris

    def browser_document(self, thumbnail_size: int = 40) -> str:
        """The browser explorer as one standalone HTML document (Bokeh, inline resources, no network).

        Controls: query subject, modality, K, radius. Views: the neighbours'
        thumbnails and distances, the distance histogram with the ball's edge,
        the query's PR-by-radius curve with its point at r, and the query and
        its top-k on the 2-D map. Every control calls ``explorer.js``'s
        ``update``, which recomputes the views from :meth:`browser_data`
        embedded in the page; the first state is drawn the same way when the
        document is ready.
        """
        from bokeh.document import Document
        from bokeh.embed import file_html
        from bokeh.events import DocumentReady
        from bokeh.layouts import column, row
        from bokeh.models import (ColumnDataSource, CustomJS, Div, Legend, LegendItem, RadioButtonGroup, Select,
                                  Slider, Span)
        from bokeh.plotting import figure
        from bokeh.resources import INLINE

        data = self.browser_data(thumbnail_size)
        state, n = self.state, len(self.labels)
        query = Select(title="query subject", name="nh-query", value=str(state["query"]), width=230,
                       options=[(str(i), f"{sid} ({CLASS_NAMES[label]})")
                                for i, (sid, label) in enumerate(zip(self.subject_ids, self.labels))])
        modality = RadioButtonGroup(labels=[_MODALITY_NAMES[m] for m in MODALITIES], name="nh-modality",
                                    active=MODALITIES.index(state["modality"]))
        bits = RadioButtonGroup(labels=[f"K = {b}" for b in self.bit_lengths], name="nh-bits",
                                active=self.bit_lengths.index(state["n_bits"]))
        radius = Slider(title="radius r (bits)", name="nh-radius", start=0, end=state["n_bits"], step=1,
                        value=state["radius"], width=230)
        neighbours = Div(text="<i>The explorer needs JavaScript.</i>", name="nh-neighbours", width=760)

        hist = ColumnDataSource({"distance": [], "relevant": [], "other": []}, name="nh-hist")
        hist_fig = figure(width=380, height=310, title=" ", x_axis_label="Hamming distance to the query (bits)",
                          y_axis_label="scans of the other modality", toolbar_location=None)
        hist_fig.vbar_stack(["relevant", "other"], x="distance", width=0.9, source=hist,
                            color=["#2ca02c", "#bbbbbb"], legend_label=["relevant (same diagnosis)", "not relevant"])
        edge = Span(location=state["radius"] + 0.5, dimension="height", line_dash="dashed", line_color="black")
        hist_fig.add_layout(edge)
        hist_fig.legend.label_text_font_size = "8pt"
        hist_fig.legend.orientation = "horizontal"
        hist_fig.add_layout(hist_fig.legend[0], "below")
        hist_fig.y_range.start = 0

        pr_curve = ColumnDataSource({"recall": [], "precision": [], "radius": []}, name="nh-pr-curve")
        pr_point = ColumnDataSource({"recall": [], "precision": [], "radius": []}, name="nh-pr-point")
        pr_fig = figure(width=380, height=310, title=" ", x_axis_label="recall", y_axis_label="precision",
                        x_range=(-0.02, 1.02), y_range=(-0.02, 1.02), toolbar_location=None)
        pr_fig.line("recall", "precision", source=pr_curve, color="#1f77b4", legend_label="this query, r = 0..K")
        pr_fig.scatter("recall", "precision", source=pr_curve, color="#1f77b4", size=4)
        pr_fig.scatter("recall", "precision", source=pr_point, color="black", size=11, legend_label="radius r")
        pr_fig.legend.label_text_font_size = "8pt"
        pr_fig.legend.orientation = "horizontal"
        pr_fig.add_layout(pr_fig.legend[0], "below")

        first = data["map"][str(state["n_bits"])]
        _, all_labels, all_modalities = self.all_codes(state["n_bits"])
        map_points = ColumnDataSource({
            "x": first["x"], "y": first["y"], "colour": [_CLASS_HEX[c] for c in all_labels],
            "marker": ["circle" if m == "mri" else "triangle" for m in all_modalities],
            "name": [f"{sid} {_MODALITY_NAMES[m]} ({CLASS_NAMES[c]})" for sid, m, c in
                     zip(np.tile(self.subject_ids, 2), all_modalities, all_labels)]}, name="nh-map-points")
        map_query = ColumnDataSource({"x": [], "y": []}, name="nh-map-query")
        map_links = ColumnDataSource({"xs": [], "ys": []}, name="nh-map-links")
        map_fig = figure(width=500, height=420, title="All codes: classical MDS on Hamming distances",
                         x_axis_label="MDS axis 1 (bits)", y_axis_label="MDS axis 2 (bits)",
                         tools="pan,wheel_zoom,reset,hover", tooltips=[("scan", "@name")])
        map_fig.multi_line("xs", "ys", source=map_links, color="black", line_width=1)
        points = map_fig.scatter("x", "y", source=map_points, color="colour", marker="marker", size=7, alpha=0.6)
        star = map_fig.scatter("x", "y", source=map_query, marker="star", size=22, color="gold", line_color="black")
        items = []
        for c, name in enumerate(CLASS_NAMES):
            dot = map_fig.scatter([np.nan], [np.nan], color=_CLASS_HEX[c], marker="square", size=8)
            items.append(LegendItem(label=name, renderers=[dot]))
        for m, marker in (("mri", "circle"), ("pet", "triangle")):
            dot = map_fig.scatter([np.nan], [np.nan], color="grey", marker=marker, size=8)
            items.append(LegendItem(label=_MODALITY_NAMES[m], renderers=[dot]))
        items.append(LegendItem(label="query (lines: to its top-k)", renderers=[star]))
        map_fig.add_layout(Legend(items=items, label_text_font_size="8pt"), "right")
        map_fig.hover.renderers = [points]

        models = dict(query=query, modality=modality, bits=bits, radius=radius, neighbours=neighbours, hist=hist,
                      pr_curve=pr_curve, pr_point=pr_point, map_points=map_points, map_query=map_query,
                      map_links=map_links, edge=edge, hist_title=hist_fig.title, pr_title=pr_fig.title)
        callback = CustomJS(args={"models": models},
                            code="window.NeuroHashExplorer.update(window.NeuroHashData, models);")
        query.js_on_change("value", callback)
        modality.js_on_change("active", callback)
        bits.js_on_change("active", callback)
        radius.js_on_change("value", callback)
        layout = column(row(query, radius), row(modality, bits), neighbours, row(hist_fig, pr_fig), map_fig)
        document = Document()
        document.add_root(layout)
        document.js_on_event(DocumentReady, callback)     # the first state, drawn by the same code
        page = file_html(document, resources=INLINE, title="Hamming-space explorer")
        payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
        script = EXPLORER_JS.read_text(encoding="utf-8").replace("</", "<\\/")
        inject = (f'<script type="text/javascript">window.NeuroHashData = {payload};</script>\n'
                  f'<script type="text/javascript">\n{script}\n</script>\n')
        # Bokeh's own script holds the text "</head>" too: insert before the real one.
        head_end = [m.start() for m in re.finditer(r"</head>\s*<body", page)][-1]
        return page[:head_end] + inject + page[head_end:]

    def browser_view(self, height: int = 1060, thumbnail_size: int = 40):
        """The kernel-free explorer for a notebook cell or an HTML page.

        :meth:`browser_document` in an ``<iframe srcdoc>``: the page (a
        notebook, Colab, the built book) shows it with no kernel and no
        network, and Bokeh's script, which is not AMD-aware, runs in its own
        document, away from the require.js that the widget manager loads.

        Returns
        -------
        An object that notebooks display as HTML (its ``data`` is the ``<iframe>``).
        """
        document = html.escape(self.browser_document(thumbnail_size), quote=True)
        return _HTMLView(f'<iframe class="nh-explorer" title="Hamming-space explorer" srcdoc="{document}" '
                    f'style="width: 100%; height: {int(height)}px; border: 1px solid #ddd;" '
                    f'loading="eager"></iframe>')

    # ------------------------------------------------------------------
    # The live widget
    # ------------------------------------------------------------------
    def widget(self):
        """An ipywidgets box: query, modality, K and radius controls over every view.

        Each control calls :meth:`select` and redraws the views into Output
        widgets; the figures are the ``plot_*`` methods above.
        """
        import ipywidgets as w
        import matplotlib.pyplot as plt
        from IPython.display import display

        options = [(f"{sid} ({CLASS_NAMES[label]})", row) for row, (sid, label)
                   in enumerate(zip(self.subject_ids, self.labels))]
        query = w.Dropdown(options=options, value=self.state["query"], description="query")
        modality = w.ToggleButtons(options=[("sMRI", "mri"), ("PET", "pet")], value=self.state["modality"],
                                   description="modality")
        n_bits = w.Dropdown(options=list(self.bit_lengths), value=self.state["n_bits"], description="K (bits)")
        radius = w.IntSlider(value=self.state["radius"], min=0, max=self.state["n_bits"], description="radius r")
        views = {name: w.Output() for name in ("neighbours", "radius", "map", "bits")}
        if 3 in self.codes:
            views["cube"] = w.Output()

        def draw(names):
            for name in names:
                out = views[name]
                out.clear_output(wait=True)
                with out:
                    if name == "neighbours":
                        fig = self.plot_neighbours()
                    elif name == "radius":
                        fig = self.plot_radius()
                    elif name == "map":
                        fig = self.plot_map()
                    elif name == "bits":
                        fig = self.plot_bits()
                    else:
                        fig = self.plot_cube()
                    display(fig)
                    plt.close(fig)

        def on_query(change):
            self.select(query=change["new"])
            draw([v for v in views if v != "bits"])

        def on_modality(change):
            self.select(modality=change["new"])
            draw([v for v in views if v != "bits"])

        def on_bits(change):
            self.select(n_bits=change["new"])
            radius.max = self.state["n_bits"]
            radius.value = self.state["radius"]
            draw([v for v in views if v != "cube"])

        def on_radius(change):
            self.select(radius=change["new"])
            draw(["radius"])

        query.observe(on_query, names="value")
        modality.observe(on_modality, names="value")
        n_bits.observe(on_bits, names="value")
        radius.observe(on_radius, names="value")
        draw(list(views))
        tabs = w.Tab(children=list(views.values()))
        for i, name in enumerate(views):
            tabs.set_title(i, name)
        return w.VBox([w.HBox([query, modality]), w.HBox([n_bits, radius]), tabs])
