"""The Colab set-up cell, simulated as closely as this machine allows.

A fresh virtual environment stands in for a Colab runtime:

- it does not have this package, and the repository is not on its path (the
  chapter is executed from a folder that holds only the chapter);
- Colab's preinstalled libraries (torch, numpy, matplotlib, Jupyter, ...) are
  stood in for by the test environment's site-packages, added as a plain path
  so that the editable install of ``neurohash_lite`` does *not* come with them;
- a stand-in ``google.colab`` module is imported at start-up, as Colab does;
- ``NEUROHASH_REPO`` points the cell at this repository (its committed
  state: the cell clones it), and pip may not use the network
  (``PIP_NO_INDEX``), so the package can only come from here.

The set-up cell must then clone the repository, install the package from the
clone, find the committed results, and chapter 0 must run.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "notebooks" / "00_how_to_use_this_book.ipynb"

pytestmark = pytest.mark.slow


def make_colab_stand_in(folder: Path) -> Path:
    stubs = folder / "colab-stubs"
    (stubs / "google" / "colab").mkdir(parents=True)
    (stubs / "google" / "__init__.py").write_text("")
    (stubs / "google" / "colab" / "__init__.py").write_text('"""Stand-in for Colab\'s module."""\n')
    # Colab imports google.colab when the runtime starts.
    (stubs / "sitecustomize.py").write_text("import google.colab  # noqa: F401\n")
    return stubs


def fresh_environment(folder: Path) -> Path:
    venv.EnvBuilder(with_pip=False).create(folder / "venv")
    python = folder / "venv" / "bin" / "python"
    target = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    preinstalled = "\n".join(site.getsitepackages()) + "\n"
    (Path(target) / "colab_preinstalled.pth").write_text(preinstalled)
    return python


def test_setup_cell_installs_the_package_and_chapter_0_runs(tmp_path):
    python = fresh_environment(tmp_path)
    stubs = make_colab_stand_in(tmp_path)
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_"))
    }
    env.update(
        PYTHONPATH=str(stubs),
        NEUROHASH_REPO=f"file://{ROOT}",
        PIP_NO_INDEX="1",
        PIP_NO_BUILD_ISOLATION="0",  # pip reads "0" here as: do not isolate the build
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )

    def run(*args, **kwargs):
        return subprocess.run([str(python), *args], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=600, **kwargs)

    before = run("-c", "import google.colab, neurohash_lite")
    assert "No module named 'neurohash_lite'" in before.stderr, before.stderr

    workdir = tmp_path / "colab-content"
    workdir.mkdir()
    (workdir / CHAPTER.name).write_bytes(CHAPTER.read_bytes())
    executed = workdir / "executed.ipynb"
    completed = subprocess.run(
        [str(python), "-m", "papermill", CHAPTER.name, executed.name, "-p", "scale", "smoke",
         "-k", "python3", "--cwd", str(workdir)],
        capture_output=True, text=True, env=env, cwd=workdir, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]

    after = run("-c", "import neurohash_lite; print(neurohash_lite.__file__)")
    assert after.returncode == 0, after.stderr
    installed_at = Path(after.stdout.strip())
    clone = workdir / "neurohash-book"
    assert installed_at.is_relative_to(clone), f"imported from {installed_at}, not from the clone at {clone}"
    results = run("-c", "from neurohash_lite.published import results_file; print(results_file('published.csv'))")
    assert results.returncode == 0 and Path(results.stdout.strip()).is_relative_to(clone), results.stderr
    cells = json.loads(executed.read_text())["cells"]
    printed = "".join(
        "".join(output.get("text", ""))
        for cell in cells if cell["cell_type"] == "code" for output in cell.get("outputs", [])
    )
    assert "mixed precision" in printed, "the environment report was not printed"
