"""The browser explorer's core (neurohash_lite/viz/explorer.js) under node equals the Python functions.

Random codes with few bits and many subjects give many tied distances, where
a top-k can differ by the tie-break alone: the JavaScript must rank ties in
subject order, as :class:`~neurohash_lite.retrieval.HammingIndex` does, and
must count the Hamming ball and its precision and recall as
:func:`~neurohash_lite.metrics.pr_curve_hamming_radius` does.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from neurohash_lite import metrics
from neurohash_lite.viz.explorer import EXPLORER_JS, HammingExplorer

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed: the explorer's JavaScript core is not run")

RUN = """
const core = require(process.argv[1]);
let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const {data, states} = JSON.parse(input);
  const results = states.map((state) => core.explore(data, state));
  process.stdout.write(JSON.stringify(results));   // NaN becomes null
});
"""


def run_node(data: dict, states: list[dict]) -> list[dict]:
    completed = subprocess.run([NODE, "-e", RUN, str(EXPLORER_JS)], input=json.dumps({"data": data, "states": states}),
                               capture_output=True, text=True, timeout=60, check=True)
    return json.loads(completed.stdout)


def random_explorer(seed: int, n: int = 60, bits=(3, 5, 12)) -> HammingExplorer:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    codes = {}
    for n_bits in bits:
        # few distinct codes per K: many subjects share one, so distances tie a lot
        pool = rng.choice([-1, 1], size=(4, n_bits))
        codes[n_bits] = tuple(pool[rng.integers(0, len(pool), n)] for _ in range(2))
    return HammingExplorer(codes, labels, [f"sub-{i:03d}" for i in range(n)], k=7, seed=seed)


def nan_to_none(x: float):
    return None if np.isnan(x) else x


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_js_core_equals_the_python_views_on_random_codes_with_ties(seed):
    explorer = random_explorer(seed)
    rng = np.random.default_rng(100 + seed)
    states = [{"query": int(rng.integers(0, 60)), "modality": str(rng.choice(["mri", "pet"])), "n_bits": int(k),
               "radius": int(rng.integers(0, k + 1))} for k in explorer.bit_lengths for _ in range(8)]
    results = run_node(explorer.browser_data(), states)
    ties_seen = 0
    for state, result in zip(states, results):
        q, m, k, r = state["query"], state["modality"], state["n_bits"], state["radius"]
        found = explorer.neighbours(q, m, k)
        report = explorer.radius_report(r, q, m, k)
        code, database, rows = explorer._database(q, m, k)
        distances = metrics.hamming_distance(code, database).astype(int)
        assert result["rows"] == rows.tolist()
        assert result["distances"] == distances.tolist()
        assert result["neighbours"]["rows"] == found.indices.tolist(), state
        assert result["neighbours"]["distances"] == found.distances.tolist()
        assert result["neighbours"]["relevant"] == found.relevant.tolist()
        total = np.bincount(distances, minlength=k + 1)
        assert result["histogram"]["total"] == total.tolist()
        relevant = explorer.labels[rows] == explorer.labels[q]
        assert result["histogram"]["relevant"] == np.bincount(distances[relevant], minlength=k + 1).tolist()
        assert result["n_inside"] == report.n_inside
        assert result["n_relevant_inside"] == report.n_relevant_inside
        assert result["n_relevant"] == report.n_relevant
        assert result["precision"] == pytest.approx(nan_to_none(report.precision), nan_ok=True)
        assert result["recall"] == pytest.approx(nan_to_none(report.recall), nan_ok=True)
        assert result["precision_curve"] == pytest.approx([nan_to_none(p) for p in report.precision_curve])
        assert result["recall_curve"] == pytest.approx([nan_to_none(p) for p in report.recall_curve])
        d_k = found.distances[-1]
        ties_seen += int((distances <= d_k).sum() > explorer.k)     # the k-th neighbour's tie is cut
    assert ties_seen >= len(states) // 2, "the random codes should cut many top-k lists inside a tie"


def test_js_popcount_covers_every_byte_and_long_codes():
    # K = 70: nine bytes, the last one partly padding; codes that differ in every bit
    n_bits, n = 70, 5
    rng = np.random.default_rng(3)
    mri = rng.choice([-1, 1], size=(n, n_bits))
    explorer = HammingExplorer({n_bits: (mri, -mri)}, np.zeros(n, dtype=int), [str(i) for i in range(n)], k=2)
    (result,) = run_node(explorer.browser_data(), [{"query": 0, "modality": "mri", "n_bits": n_bits, "radius": 3}])
    expected = metrics.hamming_distance(mri[0], -mri[1:]).astype(int).tolist()
    assert result["distances"] == expected
