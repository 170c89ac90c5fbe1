"""The conventions every chapter notebook follows, in one place.

A chapter is ``notebooks/NN_name.ipynb`` laid out as

1. a markdown title cell (what the reader will learn, how long it takes);
2. one code cell tagged ``parameters`` (papermill injects overrides after it)
   holding at least ``scale``, ``device`` and ``seed``;
3. the Colab set-up cell, identical in every chapter (:data:`COLAB_SETUP_SOURCE`);
4. the chapter itself, ending with a summary and exercises.

Notebooks are committed with outputs stripped. The repository address the
Colab cell clones lives here, in :data:`REPOSITORY_URL`, and nowhere
else; ``python -m neurohash_lite.chapter sync notebooks/*.ipynb`` rewrites
every chapter's set-up cell from it and strips outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
from pathlib import Path

__all__ = [
    "REPOSITORY_URL",
    "COLAB_SETUP_SOURCE",
    "REQUIRED_PARAMETERS",
    "strip_outputs",
    "sync_notebook",
    "reading_minutes",
    "stated_reading_minutes",
]

#: The public repository of the book. The Colab set-up cell clones it and
#: installs the package from the clone; tests point it at a local repository
#: through the environment variable ``NEUROHASH_REPO``.
REPOSITORY_URL = "https://github.com/neurohash/neurohash-book"

#: The one set-up cell every chapter carries, word for word. On Colab it
#: clones the repository (the chapters read committed results from its
#: ``book/results``) and installs the package from the clone in editable mode;
#: the clone goes on ``sys.path`` at once, because an editable install is only
#: seen by a Python started after it.
COLAB_SETUP_SOURCE = f'''\
# Set-up. On Colab this clones the book's repository and installs its package;
# anywhere else the package is already installed (`make book` / `pip install -e .`).
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    NEUROHASH_REPO = os.environ.get("NEUROHASH_REPO", "{REPOSITORY_URL}")
    if not os.path.isdir("neurohash-book"):
        subprocess.run(["git", "clone", "--quiet", "--depth", "1", NEUROHASH_REPO, "neurohash-book"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", "neurohash-book"], check=True)
    sys.path.insert(0, os.path.abspath("neurohash-book"))

import neurohash_lite'''

#: Tags of the set-up cell: found by ``colab-setup``, hidden in the HTML book
#: (input and output, behind a toggle) by ``hide-cell``.
SETUP_CELL_TAGS = ("colab-setup", "hide-cell")

#: Names the ``parameters`` cell must assign.
REQUIRED_PARAMETERS = ("scale", "device", "seed")


def strip_outputs(notebook: dict) -> dict:
    """Remove outputs and execution counts from every code cell, in place."""
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell.get("metadata", {}).pop("execution", None)
        cell.get("metadata", {}).pop("papermill", None)
    notebook.get("metadata", {}).pop("papermill", None)
    notebook.get("metadata", {}).pop("widgets", None)
    notebook.get("metadata", {}).pop("jupytext", None)
    return notebook


def _is_setup_cell(cell: dict) -> bool:
    return cell.get("cell_type") == "code" and '"google.colab" in sys.modules' in "".join(
        cell.get("source", "")
    )


def sync_notebook(path: str | os.PathLike) -> bool:
    """Rewrite a chapter's Colab set-up cell from :data:`COLAB_SETUP_SOURCE`,
    strip its outputs and set the ``python3`` kernelspec.

    The file is written to a temporary name and renamed, so an interrupted
    run never leaves half a notebook.

    Parameters
    ----------
    path : path-like
        A chapter notebook.

    Returns
    -------
    bool
        True when the file changed.
    """
    path = Path(path)
    original = path.read_text(encoding="utf-8")
    notebook = json.loads(original)
    setup_cells = [cell for cell in notebook["cells"] if _is_setup_cell(cell)]
    if len(setup_cells) != 1:
        raise ValueError(f"{path}: expected one Colab set-up cell, found {len(setup_cells)}")
    setup_cells[0]["source"] = COLAB_SETUP_SOURCE
    setup_cells[0]["metadata"] = {"tags": list(SETUP_CELL_TAGS)}
    strip_outputs(notebook)
    notebook["metadata"]["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    text = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
    if text == original:
        return False
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, suffix=".tmp", delete=False
    ) as handle:
        handle.write(text)
    os.replace(handle.name, path)
    return True


#: Reading rates of the estimate, fitted to a careful learner's measured
#: reading of Chapters 0-8 (the review of 2026-12): technical prose with
#: maths at 70 words a minute, visible code at 16 lines a minute, and half a
#: minute per figure or generated table.
WORDS_PER_MINUTE = 70
CODE_LINES_PER_MINUTE = 16
MINUTES_PER_FIGURE_OR_TABLE = 0.5


def reading_minutes(notebook: dict) -> float:
    """How long a careful reader takes over a chapter, from its length.

    Counts the words of its markdown cells, the non-blank, non-comment lines
    of the code cells a reader sees (not those tagged ``hide-input``,
    ``hide-cell`` or ``remove-input``), and the figures (``plt.show()``) and
    tables (``display(Markdown(``) the code makes, at the rates above.

    Parameters
    ----------
    notebook : dict
        A chapter as JSON.

    Returns
    -------
    float
        Minutes.
    """
    words = code_lines = shown = 0
    for cell in notebook.get("cells", []):
        source = "".join(cell.get("source", ""))
        if cell.get("cell_type") == "markdown":
            words += len(source.split())
            continue
        shown += source.count("plt.show()") + source.count("display(Markdown(")
        tags = set(cell.get("metadata", {}).get("tags", []))
        if not tags & {"hide-input", "hide-cell", "remove-input", "remove-cell", "parameters"}:
            code_lines += sum(1 for line in source.splitlines() if line.strip() and not line.strip().startswith("#"))
    return (words / WORDS_PER_MINUTE + code_lines / CODE_LINES_PER_MINUTE
            + shown * MINUTES_PER_FIGURE_OR_TABLE)


def stated_reading_minutes(notebook: dict) -> int | None:
    """The reading time a chapter's title cell states ("About N minutes to read"), or None."""
    cells = notebook.get("cells", [])
    title = "".join(cells[0].get("source", "")) if cells else ""
    found = re.search(r"About (\d+) minutes to read", " ".join(title.split()))
    return int(found.group(1)) if found else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m neurohash_lite.chapter",
        description="Keep chapter notebooks in the house layout.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    sync = commands.add_parser(
        "sync", help="rewrite the Colab set-up cell, strip outputs, set the kernelspec"
    )
    sync.add_argument("notebooks", nargs="+", type=Path)
    timing = commands.add_parser("reading-time", help="estimate each chapter's reading time from its length")
    timing.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.command == "reading-time":
        for path in args.notebooks:
            notebook = json.loads(path.read_text(encoding="utf-8"))
            print(f"{path}: about {reading_minutes(notebook):.0f} min (the title states "
                  f"{stated_reading_minutes(notebook)})")
        return
    for path in args.notebooks:
        changed = sync_notebook(path)
        print(f"{path}: {'updated' if changed else 'unchanged'}")


if __name__ == "__main__":
    main()
