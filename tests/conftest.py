"""Shared fixtures: where the test suite keeps its data and executed chapters.

Every chapter is executed once per test session through papermill at
``scale="smoke"``; the executed copies stay in ``_build/smoke/`` for
inspection, and the book build test reuses them instead of executing the
chapters a second time.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from smoke_runs import SmokeRuns
from test_book_build import STAGE, build, stage_book

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"

# The chapters and tests keep cohorts and caches here unless told otherwise,
# so the suite never touches a reader's ~/neurohash_data.
os.environ.setdefault("NEUROHASH_DATA", str(BUILD / "test-data"))
os.environ.setdefault("MPLBACKEND", "Agg")
# ANTs' registration is reproducible from its random seed only on one thread
# (ITK reads this when ANTsPy is first imported): the registration tests must
# not depend on how the threads interleave.
os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "1")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def smoke_runs() -> SmokeRuns:
    """Executes chapters at the smoke tier, once each per session."""
    return SmokeRuns(ROOT / "notebooks", BUILD / "smoke")


@pytest.fixture(scope="session")
def built_book(smoke_runs) -> Path:
    """The book built once per session from the smoke-executed chapters (HTML folder)."""
    results = smoke_runs.run_all()
    failed = [r.notebook.name for r in results if r.error]
    if failed:
        pytest.fail(f"cannot build the book: these chapters failed at smoke tier: {failed}", pytrace=False)
    stage_book(STAGE, {r.notebook.name: r.executed for r in results})
    completed = build(STAGE)
    if completed.returncode != 0:
        pytest.fail(f"jupyter-book build -W failed:\n{completed.stdout[-4000:]}\n{completed.stderr[-4000:]}",
                    pytrace=False)
    return STAGE / "_build" / "html"
