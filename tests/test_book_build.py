"""The book builds with warnings as errors, from the smoke-executed chapters.

CI does not execute the chapters twice: it stages the book with the executed
copies that ``test_notebooks`` kept and switches execution off. A broken toc
entry, reference, citation or math then fails here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).parent / "jupyter-book"
STAGE = ROOT / "_build" / "ci-book"

pytestmark = pytest.mark.slow


def stage_book(stage: Path, notebooks: dict[str, Path]) -> None:
    """Copy the book's sources to ``stage``, chapters replaced by ``notebooks``,
    with execution switched off."""
    if stage.exists():
        shutil.rmtree(stage)
    shutil.copytree(ROOT / "book", stage / "book")
    (stage / "notebooks").mkdir(parents=True)
    for name, executed in notebooks.items():
        shutil.copy(executed, stage / "notebooks" / name)
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"
    (stage / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))


def build(stage: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(JUPYTER_BOOK), "build", str(stage), "--config", str(stage / "_config.yml"),
         "--toc", str(stage / "book" / "_toc.yml"), "--warningiserror", "--keep-going"],
        capture_output=True, text=True, timeout=900,
    )


def test_book_builds_with_every_chapter(built_book):
    assert (built_book / "index.html").exists()
    for chapter in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert (built_book / "notebooks" / f"{chapter.stem}.html").exists(), chapter.name


def test_chapter_0_shows_the_environment_report(built_book):
    page = (built_book / "notebooks" / "00_how_to_use_this_book.html").read_text()
    assert "mixed precision" in page and "nilearn" in page


def test_markdown_tables_in_cell_outputs_render_as_tables(built_book):
    # a table a chapter prints with display(Markdown(...)) must not reach the page as raw "| a | b |" text
    for page in sorted((built_book / "notebooks").glob("*.html")):
        raw = re.findall(r"<p>\|[^<]*\|", page.read_text())
        assert not raw, f"{page.name}: a markdown table rendered as text: {raw[0][:80]}"
    assert "<table" in (built_book / "notebooks" / "07_comparison.html").read_text()


def test_chapters_have_a_colab_launch_button(built_book):
    page = (built_book / "notebooks" / "00_how_to_use_this_book.html").read_text()
    assert "colab.research.google.com/github/" in page


def test_a_broken_citation_fails_the_build(tmp_path):
    stage = tmp_path / "broken"
    stage_book(stage, {})
    toc = stage / "book" / "_toc.yml"
    toc.write_text("format: jb-book\nroot: book/intro\n")
    intro = stage / "book" / "intro.md"
    intro.write_text("# Intro\n\nSee {cite:p}`no_such_paper_2099`.\n")
    completed = build(stage)
    assert completed.returncode != 0
    assert "no_such_paper_2099" in completed.stdout + completed.stderr


def test_the_test_tools_caches_are_not_pages(tmp_path):
    # `make test` leaves .pytest_cache/README.md (and .hypothesis/) in the repository; a
    # `make book` after it must not take them for pages that no toc includes
    stage = tmp_path / "after-tests"
    stage_book(stage, {})
    (stage / "book" / "_toc.yml").write_text("format: jb-book\nroot: book/intro\n")
    (stage / "book" / "intro.md").write_text("# Intro\n\nNothing else.\n")
    for cache in (".pytest_cache", ".hypothesis"):
        (stage / cache).mkdir()
        (stage / cache / "README.md").write_text("# A cache\n\nNot part of the book.\n")
    completed = build(stage)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
