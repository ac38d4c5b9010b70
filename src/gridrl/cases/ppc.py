"""MATPOWER-style case arrays (a "ppc": baseMVA, bus, gen, branch, gencost) to a `Grid`.

Column layout is MATPOWER's (caseformat, version 2). Every check names the source, the matrix
and the (1-based) row, so that a malformed case file is an error a person can act on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gridrl.cases.grid import BusType, CostModel, GenType, Grid

# MATPOWER column indices (0-based), from idx_bus / idx_gen / idx_brch / idx_cost.
BUS_I, BUS_TYPE, PD, QD, GS, BS, BUS_AREA, VM, VA, BASE_KV, ZONE, VMAX, VMIN = range(13)
GEN_BUS, PG, QG, QMAX, QMIN, VG, MBASE, GEN_STATUS, PMAX, PMIN = range(10)
RAMP_AGC, RAMP_Q = 16, 19
F_BUS, T_BUS, BR_R, BR_X, BR_B, RATE_A, RATE_B, RATE_C, TAP, SHIFT, BR_STATUS = range(11)
ANGMIN, ANGMAX = 11, 12
MODEL, STARTUP, SHUTDOWN, NCOST, COST = range(5)

MIN_COLUMNS = {"bus": 13, "gen": 10, "branch": 11, "gencost": 4}


class CaseError(ValueError):
    """A case that cannot be turned into a Grid, or Grid data that cannot be used (cost curves,
    gridrl.cases.costs); the message names where: file, matrix and row, or field and element."""


# Columns where MATPOWER writes ±Inf for "no limit"; any other infinite entry is an error.
UNLIMITED_COLUMNS = {
    "bus": (VMAX, VMIN),
    "gen": (QMAX, QMIN, *range(PMIN + 1, RAMP_Q + 1)),  # capability curve and ramp limits
    "branch": (RATE_A, RATE_B, RATE_C, ANGMIN, ANGMAX),
    "gencost": (),
}


@dataclass(frozen=True)
class _Origin:
    """Where a case came from, to name in errors: the source and, for a file, the line of each
    matrix row (`lines[matrix][row]`) and of scalar fields (`lines["baseMVA"][0]`)."""

    source: str
    lines: Mapping[str, Sequence[int]]

    def at(self, field: str, row: int = 0) -> str:
        lines = self.lines.get(field)
        return self.source if lines is None else f"{self.source}, line {lines[row]}"

    def __call__(self, matrix: str, row: int | None = None) -> str:
        if row is None:
            return f"{self.source}: matrix '{matrix}'"
        return f"{self.at(matrix, row)}: matrix '{matrix}', row {row + 1}"


def _matrix(ppc: Mapping[str, Any], key: str, where: _Origin, required: bool = True) -> np.ndarray:
    if key not in ppc or ppc[key] is None:
        if required:
            raise CaseError(f"{where.source}: the case has no '{key}' matrix")
        return np.zeros((0, MIN_COLUMNS[key]))
    try:
        array = np.asarray(ppc[key], dtype=float)
    except (TypeError, ValueError) as error:
        raise CaseError(f"{where(key)} has a non-numeric entry ({error})") from None
    if array.ndim == 1 and array.size:
        array = array[None, :]
    if array.ndim != 2 or array.shape[0] == 0:
        raise CaseError(f"{where(key)} is empty or not a 2-D matrix")
    if array.shape[1] < MIN_COLUMNS[key]:
        raise CaseError(
            f"{where(key)} has {array.shape[1]} columns; "
            f"MATPOWER format version 2 needs at least {MIN_COLUMNS[key]}"
        )
    bad = np.argwhere(np.isnan(array))
    if bad.size:
        row, col = bad[0]
        raise CaseError(f"{where(key, int(row))}, column {col + 1} is not a number")
    _check_finite(array, key, where)
    return array


def _check_finite(array: np.ndarray, key: str, where: _Origin) -> None:
    """Refuse ±Inf outside the limit columns: an infinite load or impedance would flow through
    the physics as inf MW (reported as a converged result) instead of failing here."""
    limited = np.isinf(array)
    limited[:, [c for c in UNLIMITED_COLUMNS[key] if c < array.shape[1]]] = False
    bad = np.argwhere(limited)
    if bad.size:
        row, col = bad[0]
        raise CaseError(
            f"{where(key, int(row))}, column {col + 1}: {array[row, col]} is not a finite number "
            "(only limits may be Inf)"
        )


def _bus_lookup(bus: np.ndarray, where: _Origin) -> dict[int, int]:
    ids = bus[:, BUS_I]
    lookup: dict[int, int] = {}
    for row, value in enumerate(ids):
        if value != int(value) or value < 0:
            raise CaseError(f"{where('bus', row)}: bus number {value} is not an integer")
        if int(value) in lookup:
            raise CaseError(f"{where('bus', row)}: bus number {int(value)} repeats")
        lookup[int(value)] = row
    return lookup


def _to_internal(
    ids: np.ndarray, lookup: dict[int, int], where: _Origin, matrix: str, column: str
) -> np.ndarray:
    out = np.empty(len(ids), dtype=np.int32)
    for row, value in enumerate(ids):
        index = lookup.get(int(value)) if value == int(value) else None
        if index is None:
            raise CaseError(
                f"{where(matrix, row)}: {column} refers to bus {value:g}, "
                "which the bus matrix does not define"
            )
        out[row] = index
    return out


def _costs(gencost: np.ndarray, n_gen: int, where: _Origin):
    """Split gencost rows into polynomial and piecewise-linear arrays (active power only)."""
    if gencost.shape[0] == 0:
        return (
            np.full(n_gen, CostModel.POLYNOMIAL, np.int32),
            np.zeros(n_gen),
            np.zeros(n_gen),
            np.zeros((n_gen, 1)),
            np.zeros((n_gen, 1, 2)),
        )
    if gencost.shape[0] < n_gen:
        raise CaseError(f"{where('gencost')} has {gencost.shape[0]} rows for {n_gen} generators")
    rows = gencost[:n_gen]  # rows beyond n_gen are reactive costs, which gridrl does not use
    model = rows[:, MODEL].astype(np.int32)
    ncost = rows[:, NCOST].astype(int)
    for row in range(n_gen):
        if model[row] not in (CostModel.PIECEWISE_LINEAR, CostModel.POLYNOMIAL):
            raise CaseError(f"{where('gencost', row)}: unknown cost model {model[row]}")
        width = ncost[row] * (2 if model[row] == CostModel.PIECEWISE_LINEAR else 1)
        if ncost[row] < 1 or COST + width > rows.shape[1]:
            raise CaseError(
                f"{where('gencost', row)}: NCOST = {ncost[row]} needs {COST + width} "
                f"columns, the matrix has {rows.shape[1]}"
            )
    poly_order = max([n for m, n in zip(model, ncost, strict=True) if m == 2] or [1])
    pwl_points = max([n for m, n in zip(model, ncost, strict=True) if m == 1] or [1])
    poly = np.zeros((n_gen, poly_order))
    pwl = np.zeros((n_gen, pwl_points, 2))
    for row in range(n_gen):
        n = ncost[row]
        values = rows[row, COST : COST + n * (2 if model[row] == 1 else 1)]
        if model[row] == CostModel.POLYNOMIAL:
            poly[row, poly_order - n :] = values
        else:
            points = values.reshape(n, 2)
            pwl[row, :n] = points
            pwl[row, n:] = points[-1]
    return model, rows[:, STARTUP], rows[:, SHUTDOWN], poly, pwl


def _base_mva(ppc: Mapping[str, Any], where: _Origin) -> float:
    try:
        base_mva = float(ppc["baseMVA"])
    except (KeyError, TypeError, ValueError):
        raise CaseError(f"{where.source}: the case has no numeric 'baseMVA'") from None
    if not (np.isfinite(base_mva) and base_mva > 0):
        raise CaseError(
            f"{where.at('baseMVA')}: baseMVA must be positive and finite, got {base_mva}"
        )
    return base_mva


def _check_impedance(branch: np.ndarray, where: _Origin) -> None:
    """Refuse an in-service branch of zero reactance (r = x = 0 included): the DC model's
    susceptance 1/x would be infinite. MATPOWER divides by zero there too; gridrl does not
    merge the two buses into one as pandapower does for bus-bus switches."""
    bad = np.flatnonzero((branch[:, BR_STATUS] > 0) & (branch[:, BR_X] == 0))
    if bad.size:
        row = int(bad[0])
        kind = "zero impedance (r = x = 0)" if branch[row, BR_R] == 0 else "zero reactance (x = 0)"
        raise CaseError(
            f"{where('branch', row)}: branch {branch[row, F_BUS]:g}-{branch[row, T_BUS]:g} "
            f"has {kind}; give it a small reactance (e.g. x = 1e-4 p.u.) or take it out of "
            "service (BR_STATUS = 0)"
        )


def from_ppc(
    ppc: Mapping[str, Any],
    *,
    name: str = "",
    source: str = "case",
    lines: Mapping[str, Sequence[int]] | None = None,
    branch_g: np.ndarray | None = None,
    gen_type: np.ndarray | None = None,
    region: np.ndarray | None = None,
) -> Grid:
    """Build a Grid from MATPOWER-style arrays; `source` names the origin in error messages,
    `lines` (for a file) the line of each row of each matrix and of the baseMVA."""
    where = _Origin(source, lines or {})
    base_mva = _base_mva(ppc, where)
    bus = _matrix(ppc, "bus", where)
    gen = _matrix(ppc, "gen", where)
    branch = _matrix(ppc, "branch", where)
    gencost = _matrix(ppc, "gencost", where, required=False)

    lookup = _bus_lookup(bus, where)
    bus_type = bus[:, BUS_TYPE].astype(np.int32)
    for row, value in enumerate(bus[:, BUS_TYPE]):
        if value not in (1, 2, 3, 4):
            raise CaseError(f"{where('bus', row)}: bus type {value:g} is not 1, 2, 3 or 4")
    if not np.any(bus_type == BusType.REF):
        raise CaseError(f"{where('bus')}: no reference (slack) bus, i.e. no row of type 3")
    gen_bus = _to_internal(gen[:, GEN_BUS], lookup, where, "gen", "GEN_BUS")
    f_bus = _to_internal(branch[:, F_BUS], lookup, where, "branch", "F_BUS")
    t_bus = _to_internal(branch[:, T_BUS], lookup, where, "branch", "T_BUS")
    _check_impedance(branch, where)
    model, startup, shutdown, poly, pwl = _costs(gencost, len(gen), where)

    def column(matrix: np.ndarray, index: int, default: float) -> np.ndarray:
        return matrix[:, index] if matrix.shape[1] > index else np.full(len(matrix), default)

    tap = branch[:, TAP].copy()
    tap[tap == 0] = 1.0  # MATPOWER: a zero ratio means a line
    rate_a = branch[:, RATE_A].copy()
    rate_a[rate_a <= 0] = np.inf  # MATPOWER: zero means unlimited
    ramp = column(gen, RAMP_AGC, 0.0).copy()
    ramp[ramp <= 0] = np.inf
    n_bus, n_gen, n_branch = len(bus), len(gen), len(branch)
    return Grid(
        bus_type=bus_type,
        pd=bus[:, PD],
        qd=bus[:, QD],
        gs=bus[:, GS],
        bs=bus[:, BS],
        vm=bus[:, VM],
        va=np.deg2rad(bus[:, VA]),
        base_kv=bus[:, BASE_KV],
        vmax=bus[:, VMAX],
        vmin=bus[:, VMIN],
        region=np.zeros(n_bus, np.int32) if region is None else np.asarray(region, np.int32),
        gen_bus=gen_bus,
        pg=gen[:, PG],
        qg=gen[:, QG],
        qmax=gen[:, QMAX],
        qmin=gen[:, QMIN],
        vg=gen[:, VG],
        pmax=gen[:, PMAX],
        pmin=gen[:, PMIN],
        gen_status=gen[:, GEN_STATUS] > 0,
        ramp=ramp,
        gen_type=(
            np.full(n_gen, GenType.THERMAL, np.int32)
            if gen_type is None
            else np.asarray(gen_type, np.int32)
        ),
        cost_model=model,
        cost_startup=startup,
        cost_shutdown=shutdown,
        cost_poly=poly,
        cost_pwl=pwl,
        f_bus=f_bus,
        t_bus=t_bus,
        r=branch[:, BR_R],
        x=branch[:, BR_X],
        b=branch[:, BR_B],
        g=np.zeros(n_branch) if branch_g is None else np.asarray(branch_g, float),
        rate_a=rate_a,
        tap=tap,
        shift=np.deg2rad(branch[:, SHIFT]),
        branch_status=branch[:, BR_STATUS] > 0,
        angmin=np.deg2rad(column(branch, ANGMIN, -360.0)),
        angmax=np.deg2rad(column(branch, ANGMAX, 360.0)),
        base_mva=base_mva,
        bus_ids=tuple(int(i) for i in bus[:, BUS_I]),
        name=name,
    )
