"""Execute chapter notebooks at the smoke tier with papermill, once each."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import papermill
from papermill.exceptions import PapermillExecutionError


@dataclass
class SmokeResult:
    notebook: Path
    executed: Path
    seconds: float
    error: str | None


class SmokeRuns:
    """Run each chapter once per session and remember how it went.

    Parameters
    ----------
    notebook_dir : Path
        Where the chapters are (``notebooks/``).
    output_dir : Path
        Where the executed copies are kept for inspection (``_build/smoke/``).
    """

    def __init__(self, notebook_dir: Path, output_dir: Path):
        self.notebook_dir = notebook_dir
        self.output_dir = output_dir
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.results: dict[str, SmokeResult] = {}

    def chapters(self) -> list[Path]:
        return sorted(self.notebook_dir.glob("[0-9][0-9]_*.ipynb"))

    def run(self, notebook: Path) -> SmokeResult:
        if notebook.name in self.results:
            return self.results[notebook.name]
        executed = self.output_dir / notebook.name
        start = time.perf_counter()
        error = None
        try:
            papermill.execute_notebook(
                str(notebook),
                str(executed),
                parameters={"scale": "smoke"},
                kernel_name="python3",
                cwd=str(notebook.parent),
                progress_bar=False,
            )
        except PapermillExecutionError as failure:
            error = describe_failure(notebook, executed, failure)
        result = SmokeResult(notebook, executed, time.perf_counter() - start, error)
        self.results[notebook.name] = result
        self._write_timings()
        return result

    def run_all(self) -> list[SmokeResult]:
        return [self.run(notebook) for notebook in self.chapters()]

    def _write_timings(self) -> None:
        timings = {name: round(r.seconds, 1) for name, r in self.results.items()}
        (self.output_dir / "timings.json").write_text(json.dumps(timings, indent=1))


def describe_failure(notebook: Path, executed: Path, failure: PapermillExecutionError) -> str:
    """Name the notebook and the failing cell by its position in the chapter
    (papermill's injected-parameters cell does not count) and its first lines."""
    cells = json.loads(executed.read_text())["cells"]
    injected_before = sum(
        1
        for cell in cells[: failure.cell_index]
        if "injected-parameters" in cell.get("metadata", {}).get("tags", [])
    )
    position = failure.cell_index - injected_before
    source = "\n".join(failure.source.splitlines()[:6])
    return (
        f"{notebook.name}: cell {position} (counting from 0, markdown included) raised "
        f"{failure.ename}: {failure.evalue}\n--- the cell begins ---\n{source}\n"
        f"--- executed copy kept at {executed} ---"
    )
