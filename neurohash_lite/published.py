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
from pathlib import Path

__all__ = [
    "PUBLISHED_CSV",
    "COLUMNS",
    "DIRECTIONS",
    "load_published",
    "published_table",
    "published_methods",
]

#: Where the CSV lives in the repository (the package is installed editable,
#: so the repository root is the package folder's parent).
PUBLISHED_CSV = Path(__file__).resolve().parent.parent / "book" / "results" / "published.csv"

#: The CSV's columns, in order.
COLUMNS = ("paper", "table", "dataset", "method", "method_id", "n_bits",
           "direction", "value", "in_book_data", "note")

#: Printed columns of the tables: the two retrieval directions and the "Aver" column.
DIRECTIONS = ("mri_to_pet", "pet_to_mri", "image_to_text", "text_to_image", "mean")

_BOOLEANS = {"true": True, "false": False}


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
