"""The committed comparison grids that Chapter 7 and the closing page read (book/results/book-*.json).

Each must hold every (method, K, seed) cell of the design's grid, validate
(scores recomputed from the stored codes), and say how it was made in a
form that runs from any clone.
"""

from __future__ import annotations

import pytest

from neurohash_lite.experiments import METHODS, SETTINGS, load_results
from neurohash_lite.published import results_file


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_committed_grid_holds_every_cell_and_says_how_it_was_made(setting):
    results = load_results(results_file(f"book-{setting}.json"))   # complete: a missing cell is an error naming it
    config = results["config"]
    assert (config["scale"], config["setting"]) == ("book", setting)
    assert config["methods"] == list(METHODS)
    assert config["bits"] == [16, 32, 64, 128] and config["seeds"] == [0, 1, 2]
    assert len(results["runs"]) == len(METHODS) * 4 * 3
    for invocation in results["invocations"]:
        assert invocation["command"].startswith("python -m neurohash_lite.experiments compare "), invocation["command"]
        assert f"--setting {setting} " in invocation["command"]
        assert invocation["git_dirty"] is False
