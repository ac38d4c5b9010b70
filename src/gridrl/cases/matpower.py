"""MATPOWER case files (format version 2, `.m`) to a `Grid`, without Octave.

The parser reads only what a case file holds: struct-field assignments (`mpc.baseMVA = 100;`,
`mpc.bus = [ ... ];`) with numeric matrices whose rows end with ';' or a newline, '%' comments,
`...` continuations, and numbers such as 1e-3, Inf and -Inf. Other fields (cell arrays such as
`mpc.bus_name`, extra matrices) are skipped. Every error names the file, the matrix, the row and
the line, so a person can fix the file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gridrl.cases.grid import Grid
from gridrl.cases.ppc import MIN_COLUMNS, CaseError, from_ppc

MATRICES = ("bus", "gen", "branch", "gencost")
_ASSIGNMENT = re.compile(r"^[ \t]*[A-Za-z]\w*\.(?P<field>\w+)[ \t]*=[ \t]*", re.MULTILINE)
_CLOSING = {"[": "]", "{": "}"}


@dataclass(frozen=True)
class _Field:
    """The right-hand side of one `struct.field = ...` assignment."""

    text: str
    line: int  # 1-based line of the assignment in the file
    is_matrix: bool


def _strip_comments(text: str) -> str:
    """Remove '%' comments outside quoted strings, keeping every line (for line numbers)."""
    lines = []
    for line in text.splitlines():
        in_string = False
        for position, char in enumerate(line):
            if char == "'":
                in_string = not in_string
            elif char == "%" and not in_string:
                line = line[:position]
                break
        lines.append(line)
    return "\n".join(lines)


def _fields(text: str, source: str) -> dict[str, _Field]:
    """Every struct-field assignment of the file, by field name."""
    fields: dict[str, _Field] = {}
    for match in _ASSIGNMENT.finditer(text):
        start = match.end()
        line = text.count("\n", 0, match.start()) + 1
        opening = text[start : start + 1]
        if opening in _CLOSING:
            end = text.find(_CLOSING[opening], start)
            if end < 0:
                raise CaseError(
                    f"{source}, line {line}: '{match['field']}' opens '{opening}' "
                    f"but never closes it with '{_CLOSING[opening]}'"
                )
            fields[match["field"]] = _Field(text[start + 1 : end], line, opening == "[")
        else:
            value = re.split(r"[;\n]", text[start:], maxsplit=1)[0]
            fields[match["field"]] = _Field(value.strip(), line, False)
    return fields


def _rows(body: str, first_line: int) -> list[tuple[int, list[str]]]:
    """The rows of a matrix body as (file line, entries); rows end with ';' or a newline."""
    rows = []
    continued: list[str] = []
    continued_line = first_line
    for offset, line in enumerate(body.split("\n")):
        if not continued:
            continued_line = first_line + offset
        if line.rstrip().endswith("..."):  # MATLAB continuation: the row goes on
            continued.append(line.rstrip()[:-3])
            continue
        for segment in " ".join([*continued, line]).split(";"):
            entries = [entry for entry in re.split(r"[\s,]+", segment) if entry]
            if entries:
                rows.append((continued_line, entries))
        continued = []
    return rows


def _matrix(
    fields: dict[str, _Field], name: str, source: str
) -> tuple[np.ndarray | None, list[int]]:
    """A numeric matrix field, checked for shape and numbers, and the file line of each row;
    (None, []) where the file lacks it."""
    field = fields.get(name)
    if field is None:
        return None, []
    if not field.is_matrix:
        raise CaseError(f"{source}, line {field.line}: matrix '{name}' is not a [ ... ] matrix")
    rows = _rows(field.text, field.line)
    if not rows:
        raise CaseError(f"{source}, line {field.line}: matrix '{name}' is empty")
    width = len(rows[0][1])
    values = np.empty((len(rows), width))
    for index, (line, entries) in enumerate(rows):
        where = f"{source}, line {line}: matrix '{name}', row {index + 1}"
        if len(entries) != width:
            raise CaseError(f"{where} has {len(entries)} entries; row 1 has {width}")
        if width < MIN_COLUMNS[name]:
            raise CaseError(
                f"{where} has {width} entries; MATPOWER format version 2 needs at least "
                f"{MIN_COLUMNS[name]}"
            )
        for column, entry in enumerate(entries):
            try:
                values[index, column] = float(entry)
            except ValueError:
                raise CaseError(
                    f"{where}, column {column + 1}: '{entry}' is not a number"
                ) from None
    return values, [line for line, _ in rows]


def _base_mva(fields: dict[str, _Field], source: str) -> float:
    field = fields.get("baseMVA")
    if field is None:
        raise CaseError(f"{source}: the case has no 'baseMVA'")
    try:
        return float(field.text)
    except ValueError:
        raise CaseError(
            f"{source}, line {field.line}: baseMVA '{field.text}' is not a number"
        ) from None


def _check_version(fields: dict[str, _Field], source: str) -> None:
    field = fields.get("version")
    if field is not None and field.text.strip("'\" ") != "2":
        raise CaseError(
            f"{source}, line {field.line}: MATPOWER case format version {field.text} is not "
            "supported; gridrl reads version 2 (convert with MATPOWER's loadcase/savecase)"
        )


def read_matpower(path: str | os.PathLike) -> Grid:
    """The Grid of a MATPOWER case file (format version 2, `.m`)."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise CaseError(f"{source}: no such MATPOWER case file")
    try:
        text = _strip_comments(path.read_text())
    except UnicodeDecodeError:
        raise CaseError(f"{source}: not a MATPOWER case file (not text)") from None
    fields = _fields(text, source)
    if not {"baseMVA", *MATRICES[:3]} & fields.keys():
        raise CaseError(
            f"{source}: not a MATPOWER case file (no mpc.baseMVA, mpc.bus, mpc.gen or mpc.branch)"
        )
    _check_version(fields, source)
    ppc = {"baseMVA": _base_mva(fields, source)}
    lines = {"baseMVA": [fields["baseMVA"].line]}
    for name in MATRICES:
        ppc[name], lines[name] = _matrix(fields, name, source)
        if ppc[name] is None and name != "gencost":
            raise CaseError(f"{source}: the case has no '{name}' matrix (mpc.{name} = [ ... ];)")
    return from_ppc(ppc, name=path.stem, source=source, lines=lines)
