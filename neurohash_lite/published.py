"""The two papers' published mAP tables, read from ``book/results/published.csv``.

The CSV holds every cell of Tao & An (2021) Table I and of Wang & Zeng (2023)
Tables 2-5, one printed number per row, exactly as printed (its schema is in
``book/results/README.md``). The chapters lay their own results beside these
numbers; nothing here recomputes them.

    rows = load_published()
    table_2 = published_table(rows, "wang2023", "2")
    table_2[("dcpha", 128, "mean")]                    # 0.6813
    published_methods(rows, "wang2023", "2")[:3]       # ['dhn', 'dsh', 'dpsh']
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

__all__ = [
    "PUBLISHED_CSV",
    "RESULTS_DIR",
    "results_file",
    "COLUMNS",
    "DIRECTIONS",
    "load_published",
    "published_table",
    "published_methods",
    "side_by_side_table",
    "published_versus_run",
]

#: Where the CSV lives in the repository (the package is installed editable,
#: so the repository root is the package folder's parent).
PUBLISHED_CSV = Path(__file__).resolve().parent.parent / "book" / "results" / "published.csv"

#: The folder of every committed results file (the published tables and the book's own grids).
RESULTS_DIR = PUBLISHED_CSV.parent

#: The CSV's columns, in order.
COLUMNS = ("paper", "table", "dataset", "method", "method_id", "n_bits",
           "direction", "value", "in_book_data", "note")

#: Printed columns of the tables: the two retrieval directions and the "Aver" column.
DIRECTIONS = ("mri_to_pet", "pet_to_mri", "image_to_text", "text_to_image", "mean")

_BOOLEANS = {"true": True, "false": False}


def results_file(name: str, results_dir=None) -> Path:
    """The path of a committed results file, checked to exist.

    Parameters
    ----------
    name : str
        File name, e.g. ``"book-adni2-dcpha.json"``.
    results_dir : path-like, optional
        Default :data:`RESULTS_DIR`, the repository's ``book/results``.

    Raises
    ------
    FileNotFoundError
        Naming the path, and how to get the file (a clone of the repository).
    """
    path = Path(RESULTS_DIR if results_dir is None else results_dir) / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the committed results live in book/results of the book's "
                                "repository (clone it, or pass results_dir)")
    return path


def _parse_row(raw: dict, where: str) -> dict:
    """Typed copy of one CSV row; ``where`` names the file and row in errors."""
    if any(raw[name] is None for name in COLUMNS):
        raise ValueError(f"{where}: too few fields (expected {len(COLUMNS)}: {', '.join(COLUMNS)})")
    for name in COLUMNS[:-1]:  # every column but the note is required
        if not raw[name].strip():
            raise ValueError(f"{where}: empty {name!r}")
    row = dict(raw)
    try:
        row["n_bits"] = int(raw["n_bits"])
        row["value"] = float(raw["value"])
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    if not 0.0 <= row["value"] <= 1.0:
        raise ValueError(f"{where}: value {raw['value']} lies outside [0, 1] (an mAP)")
    if raw["direction"] not in DIRECTIONS:
        raise ValueError(f"{where}: direction {raw['direction']!r} is not one of {DIRECTIONS}")
    if raw["in_book_data"] not in _BOOLEANS:
        raise ValueError(f"{where}: in_book_data {raw['in_book_data']!r} must be 'true' or 'false'")
    row["in_book_data"] = _BOOLEANS[raw["in_book_data"]]
    return row


def load_published(path=None) -> list[dict]:
    """Read and check the published tables, one dict per printed cell.

    Parameters
    ----------
    path : str or pathlib.Path, optional
        A CSV with the columns :data:`COLUMNS`. Default :data:`PUBLISHED_CSV`.

    Returns
    -------
    list of dict
        One dict per row, in file order (the papers' printed order), keyed by
        :data:`COLUMNS`; ``n_bits`` is an int, ``value`` a float and
        ``in_book_data`` a bool, the other fields strings.

    Raises
    ------
    FileNotFoundError
        If the file does not exist (the message names the path).
    ValueError
        If a column is unknown or missing, a field is empty or malformed, a
        value lies outside [0, 1], or two rows give the same cell
        (paper, table, method_id, n_bits, direction). The message names the
        file and the row number (the header is row 1).

    References
    ----------
    Tao & An (2021), Table I; Wang & Zeng (2023), Tables 2-5.
    """
    path = Path(PUBLISHED_CSV if path is None else path)
    if not path.is_file():
        raise FileNotFoundError(f"published tables not found: {path} (expected the CSV at "
                                f"book/results/published.csv in the repository)")
    rows, seen = [], {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        unknown = [name for name in header if name not in COLUMNS]
        missing = [name for name in COLUMNS if name not in header]
        if unknown or missing:
            raise ValueError(f"{path}, row 1: unknown columns {unknown}, missing columns "
                             f"{missing}; expected {', '.join(COLUMNS)}")
        for number, raw in enumerate(reader, start=2):
            where = f"{path}, row {number}"
            if None in raw:
                raise ValueError(f"{where}: more fields than the {len(COLUMNS)} columns")
            row = _parse_row(raw, where)
            cell = (row["paper"], row["table"], row["method_id"], row["n_bits"], row["direction"])
            if cell in seen:
                raise ValueError(f"{where}: duplicate cell {cell}, first given in row {seen[cell]}")
            seen[cell] = number
            rows.append(row)
    return rows


def _select(rows: list[dict], paper: str, table) -> list[dict]:
    chosen = [row for row in rows if row["paper"] == paper and row["table"] == str(table)]
    if not chosen:
        tables = sorted({(row["paper"], row["table"]) for row in rows})
        raise ValueError(f"no published table {table!r} of paper {paper!r}; there are {tables}")
    return chosen


def published_table(rows: list[dict], paper: str, table) -> dict:
    """One printed table as a dict from (method_id, n_bits, direction) to mAP.

    Parameters
    ----------
    rows : list of dict
        The output of :func:`load_published`.
    paper : {"tao2021", "wang2023"}
        Which paper.
    table : str or int
        The table's printed number: ``"I"`` for Tao & An, ``2`` to ``5`` for
        Wang & Zeng.

    Returns
    -------
    dict
        ``{(method_id, n_bits, direction): value}``, e.g.
        ``("dcpha", 128, "mean") -> 0.6813``.

    Raises
    ------
    ValueError
        If the rows hold no such table.
    """
    return {(row["method_id"], row["n_bits"], row["direction"]): row["value"]
            for row in _select(rows, paper, table)}


def published_methods(rows: list[dict], paper: str, table, *, printed: bool = False) -> list[str]:
    """The methods of one table, in the paper's printed row order.

    Parameters
    ----------
    rows : list of dict
        The output of :func:`load_published`.
    paper : {"tao2021", "wang2023"}
        Which paper.
    table : str or int
        The table's printed number (see :func:`published_table`).
    printed : bool, default False
        Return the printed labels (``"SePH"``, ``"Ours"``, ``"HashNet"``)
        instead of the book's method ids (``"seph"``, ``"ahs"``, ``"hashnet"``).

    Returns
    -------
    list of str
        Each method once, in order of first appearance.

    Raises
    ------
    ValueError
        If the rows hold no such table.
    """
    key = "method" if printed else "method_id"
    return list(dict.fromkeys(row[key] for row in _select(rows, paper, table)))


_ARROWS = {"mri_to_pet": "M→P", "pet_to_mri": "P→M", "mean": "Aver",
           "image_to_text": "I→T", "text_to_image": "T→I"}


def _mean_and_spread(mean: float, std: float, digits: int) -> str:
    """``0.612 ± 0.031``, or ``0.612 (1 seed)`` where the std is NaN (a single run)."""
    return f"{mean:.{digits}f} (1 seed)" if math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def side_by_side_table(rows: list[dict], paper: str, table, ours: dict, *, names: dict | None = None,
                       extra_methods=(), digits: int = 3) -> str:
    """A published table in its paper's layout, every printed row followed by ours.

    Parameters
    ----------
    rows : list of dict
        The output of :func:`load_published`.
    paper, table
        Which table (see :func:`published_table`).
    ours : dict
        ``{(method_id, n_bits, direction): (mean, std)}`` over seeds, for the
        methods this book ran on the matching setting (``direction`` as in
        the CSV, ``"mean"`` for the average of the two directions); a NaN
        std (one seed) prints the mean alone, marked "(1 seed)".
    names : dict, optional
        Display name of a method id for the extra rows.
    extra_methods : sequence of str
        Method ids run here that the paper's table does not have, appended
        as "ours" rows after the printed ones.
    digits : int
        Decimals of our cells (the papers print four).

    Returns
    -------
    str
        A markdown table. Tao & An's Table I has one block per direction
        (its "Task" column), Wang & Zeng's tables one column per direction
        and K with the "Aver" column. A method this book does not implement
        yet keeps its printed row and reads "not implemented yet" in ours.
    """
    chosen = _select(rows, paper, table)
    values = published_table(rows, paper, table)
    bits = sorted({row["n_bits"] for row in chosen})
    directions = list(dict.fromkeys(row["direction"] for row in chosen))
    printed = dict(zip(published_methods(rows, paper, table), published_methods(rows, paper, table, printed=True)))
    names = names or {}

    implemented = {key[0] for key in ours}

    def our_cells(method, columns):
        if method not in implemented:
            return ["not implemented yet"] + [""] * (len(columns) - 1)
        return [_mean_and_spread(*ours[method, k, d], digits) if (method, k, d) in ours else "n/a"
                for k, d in columns]

    methods = list(printed) + [m for m in extra_methods if m not in printed]
    if "mean" not in directions:  # Tao & An: a block of rows per direction
        columns_of = {d: [(k, d) for k in bits] for d in directions}
        lines = ["| task | method | | " + " | ".join(f"{k} bits" for k in bits) + " |",
                 "|---|---|---|" + "---|" * len(bits)]
        for direction in directions:
            task = _ARROWS[direction]  # printed once, on the block's first row
            for method in methods:
                if method in printed:
                    lines.append(f"| {task} | {printed[method]} | paper | "
                                 + " | ".join(f"{values[method, k, direction]:.4f}" for k in bits) + " |")
                    task, label = "", ""
                else:
                    label = names.get(method, method)
                lines.append(f"| {task} | {label} | ours | " + " | ".join(our_cells(method, columns_of[direction]))
                             + " |")
                task = ""
        return "\n".join(lines)
    columns = [(k, d) for k in bits for d in directions]
    lines = ["| method | | " + " | ".join(f"{k} {_ARROWS[d]}" for k, d in columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    for method in methods:
        label = printed.get(method, names.get(method, method))
        if method in printed:
            lines.append(f"| {label} | paper | " + " | ".join(f"{values[method, k, d]:.4f}" for k, d in columns) + " |")
            label = ""
        lines.append(f"| {label} | ours | " + " | ".join(our_cells(method, columns)) + " |")
    return "\n".join(lines)


def published_versus_run(rows: list[dict], printed: list, ours: list, bits, directions=("mri_to_pet", "pet_to_mri"),
                         *, digits: int = 3) -> str:
    """Printed rows of the papers' tables above a chapter's own rows, in one markdown table.

    Parameters
    ----------
    rows : list of dict
        The output of :func:`load_published`.
    printed : list of (label, paper, table, method_id)
        The published rows to show, e.g. ``("AHS, Tao & An Table I", "tao2021", "I", "ahs")``.
    ours : list of (label, dict)
        A chapter's rows: ``{(n_bits, direction): mAP}`` each (a missing
        cell reads "n/a").
    bits : sequence of int
        Code lengths, one column group each.
    directions : sequence of str
        Columns per code length (``"mean"`` for the papers' "Aver").

    Returns
    -------
    str
    """
    header = "| | " + " | ".join(f"{k} {_ARROWS[d]}" for k in bits for d in directions) + " |"
    lines = [header, "|---|" + "---|" * (len(bits) * len(directions))]
    for label, paper, table, method in printed:
        values = published_table(rows, paper, table)
        lines.append(f"| {label} | " + " | ".join(
            f"{values[method, k, d]:.4f}" if (method, k, d) in values else "n/a" for k in bits for d in directions)
            + " |")
    for label, scores in ours:
        lines.append(f"| {label} | " + " | ".join(
            f"{scores[k, d]:.{digits}f}" if (k, d) in scores else "n/a" for k in bits for d in directions) + " |")
    return "\n".join(lines)

