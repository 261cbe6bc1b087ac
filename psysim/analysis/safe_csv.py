"""CSV files that a spreadsheet opens as text, not as formulas (OWASP's CSV-injection rule).

A free-text cell (a rater's comment, a model's reply, a reason) that starts with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return is run as a formula by Excel, LibreOffice and Google
Sheets (``=HYPERLINK(...)`` becomes a live link). Such cells get a leading ``'``. Only text cells
are touched: numeric columns, and numbers in mixed columns, are written as they are.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: object) -> object:
    """``value`` with a leading ``'`` if it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def escape_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every text cell escaped (:func:`escape_cell`); numeric columns untouched."""
    escaped = frame.copy()
    for column in escaped.columns:
        if not (pd.api.types.is_numeric_dtype(escaped[column]) or pd.api.types.is_bool_dtype(escaped[column])):
            escaped[column] = escaped[column].map(escape_cell)
    return escaped


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """``frame.to_csv(path, index=False)`` with formula-like text cells escaped."""
    escape_formulas(frame).to_csv(path, index=False)
