"""Chapters are committed clean and share one layout (neurohash_lite.chapter)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml

from neurohash_lite.chapter import COLAB_SETUP_SOURCE, REPOSITORY_URL, REQUIRED_PARAMETERS

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
IDS = [path.stem for path in CHAPTERS]


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def source(cell: dict) -> str:
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else text


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_outputs_are_stripped(path):
    for index, cell in enumerate(load(path)["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name}: cell {index} has outputs"
            assert cell.get("execution_count") is None, f"{path.name}: cell {index} has an execution count"


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_no_cell_is_empty(path):
    # an empty cell renders as a gap in the book, and an empty code cell as an empty input box
    for index, cell in enumerate(load(path)["cells"]):
        assert source(cell).strip(), f"{path.name}: cell {index} ({cell['cell_type']}) is empty"


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_kernelspec_is_python3(path):
    assert load(path)["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_title_then_one_parameters_cell(path):
    cells = load(path)["cells"]
    tagged = [i for i, cell in enumerate(cells) if "parameters" in cell.get("metadata", {}).get("tags", [])]
    assert tagged == [1], f"{path.name}: want exactly one 'parameters' cell, right after the title; found at {tagged}"
    assert cells[0]["cell_type"] == "markdown" and source(cells[0]).startswith("# "), (
        f"{path.name}: the first cell must be the markdown title ('# ...')"
    )
    parameters = cells[1]
    assert parameters["cell_type"] == "code"
    assigned = {
        target.id
        for node in ast.parse(source(parameters)).body
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    missing = set(REQUIRED_PARAMETERS) - assigned
    assert not missing, f"{path.name}: the parameters cell does not set {sorted(missing)}"


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_colab_setup_cell_is_the_shared_one(path):
    cells = load(path)["cells"]
    assert cells[2]["cell_type"] == "code"
    assert source(cells[2]) == COLAB_SETUP_SOURCE, (
        f"{path.name}: the cell after the parameters must be the shared Colab set-up cell; "
        "run `python -m neurohash_lite.chapter sync` on it"
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_title_says_what_and_how_long_and_ends_with_exercises(path):
    cells = load(path)["cells"]
    title = source(cells[0]).lower()
    assert "what you will learn" in title and "time" in title, f"{path.name}: the title cell needs objectives and a time"
    text = "\n".join(source(cell) for cell in cells if cell["cell_type"] == "markdown")
    assert "## Summary" in text and "## Exercises" in text, f"{path.name}: end with a Summary and Exercises"


def test_every_chapter_is_in_the_table_of_contents():
    toc = (ROOT / "book" / "_toc.yml").read_text()
    for path in CHAPTERS:
        assert f"notebooks/{path.stem}" in toc, f"{path.name} is missing from book/_toc.yml"


def test_repository_url_lives_in_one_place():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["repository"]["url"] == REPOSITORY_URL, (
        "_config.yml's repository.url (the launch buttons) and neurohash_lite.chapter.REPOSITORY_URL "
        "(the Colab set-up cell) must name the same repository"
    )
    assert REPOSITORY_URL in COLAB_SETUP_SOURCE


def test_reading_time_counts_what_a_reader_sees():
    from neurohash_lite.chapter import reading_minutes, stated_reading_minutes
    words = " ".join(["word"] * 140)
    notebook = {"cells": [
        {"cell_type": "markdown", "source": "# Title\n\n**Time.** About 12 minutes to read.\n"},
        {"cell_type": "markdown", "source": words},
        {"cell_type": "code", "metadata": {}, "source": "x = 1\n# a comment\n\ny = 2\nplt.show()\n"},
        {"cell_type": "code", "metadata": {"tags": ["hide-input"]}, "source": "z = 3\n" * 50},
    ]}
    minutes = reading_minutes(notebook)
    assert minutes == pytest.approx((140 + 8) / 70 + 3 / 16 + 0.5)  # 8 words in the title cell
    assert stated_reading_minutes(notebook) == 12


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_stated_reading_time_matches_the_chapters_length(path):
    from neurohash_lite.chapter import reading_minutes, stated_reading_minutes
    notebook = load(path)
    stated, measured = stated_reading_minutes(notebook), reading_minutes(notebook)
    assert stated is not None, f"{path.name}: the title cell must state 'About N minutes to read'"
    assert abs(stated - measured) <= max(5, 0.2 * measured), (
        f"{path.name} states {stated} minutes to read; its length reads as about {measured:.0f} "
        "(python -m neurohash_lite.chapter reading-time)")
