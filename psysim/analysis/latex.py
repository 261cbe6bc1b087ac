"""Every table of the HTML report as LaTeX (``tables.tex``): booktabs, numbers as displayed.

Each table is a ``table`` float with its caption and a label (``tab:<n>``), right-aligned numeric
columns, and units in a second header row. ``\\usepackage{booktabs}`` is needed in the preamble.
"""

from __future__ import annotations

import re

from psysim.analysis.document import Table

_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
            "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
            ">": r"\textgreater{}", "–": "--", "−": "$-$", "≥": r"$\geq$", "≤": r"$\leq$", "×": r"$\times$"}
_PATTERN = re.compile("|".join(re.escape(k) for k in _SPECIAL))


def escape(text: str) -> str:
    return _PATTERN.sub(lambda m: _SPECIAL[m.group()], str(text).replace("`", "").replace("**", ""))


def latex_table(table: Table, number: int) -> str:
    numeric = [bool(table.rows) and all(row[i]["num"] for row in table.rows) for i in range(len(table.columns))]
    spec = "".join("r" if n else "l" for n in numeric)
    lines = [r"\begin{table}[htbp]", r"\centering", r"\small", f"\\caption{{{escape(table.caption)}}}",
             f"\\label{{tab:{number}}}", f"\\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(escape(c["name"]) for c in table.columns) + r" \\"]
    if any(c["unit"] for c in table.columns):
        lines.append(" & ".join(f"({escape(c['unit'])})" if c["unit"] else "" for c in table.columns) + r" \\")
    lines.append(r"\midrule")
    lines += [" & ".join(escape(cell["text"]) for cell in row) + r" \\" for row in table.rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def latex_tables(tables: list[Table]) -> str:
    head = ("% psychotherapy-in-silico report: every table of index.html (needs \\usepackage{booktabs}).\n"
            "% Simulated ratings from a language model role-playing a client: not patient outcomes.\n\n")
    return head + "\n".join(latex_table(table, number) for number, table in enumerate(tables, start=1))
