"""Every chapter runs, start to end, at the smoke tier.

New chapters under ``notebooks/`` are picked up automatically. The executed
copies are kept in ``_build/smoke/`` for inspection.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CHAPTERS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_chapters():
    assert CHAPTERS, "no chapter notebooks found under notebooks/"


@pytest.mark.parametrize("notebook", CHAPTERS, ids=[path.stem for path in CHAPTERS])
def test_chapter_runs_at_smoke_tier(notebook, smoke_runs):
    result = smoke_runs.run(notebook)
    if result.error:
        pytest.fail(result.error, pytrace=False)
    assert result.executed.exists()
