"""The generator cost curves of a Grid: quadratic polynomials and convex piecewise-linear curves
(MATPOWER gencost models 2 and 1), in MW and $/h. The one decoder of `cost_model`, `cost_poly`
and `cost_pwl`: the OPF optimises against these curves and the environment charges them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridrl.cases.grid import CostModel, Grid
from gridrl.cases.ppc import CaseError

# Relative slack on "slopes do not decrease", so that rounding in a file's breakpoints is no error.
CONVEXITY_TOLERANCE = 1e-9


@dataclass(frozen=True)
class GenCosts:
    """Cost of generator g at P MW: quadratic[g]·P² + linear[g]·P + constant[g] for polynomial
    costs; for piecewise-linear ones the largest slope·P + intercept over g's segments (the
    epigraph form, which extends the first and last segments beyond the breakpoints)."""

    quadratic: np.ndarray  # [n_gen] $/h per MW², 0 for piecewise-linear generators
    linear: np.ndarray  # [n_gen] $/MWh
    constant: np.ndarray  # [n_gen] $/h
    pwl_gens: np.ndarray  # int [n_pwl], generators with piecewise-linear costs
    segment_gen: np.ndarray  # int [n_segment], position in pwl_gens of each segment's generator
    segment_slope: np.ndarray  # [n_segment] $/MWh
    segment_intercept: np.ndarray  # [n_segment] $/h


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _field(grid: Grid, name: str, ndim: int, dtype=np.float64) -> np.ndarray:
    """One cost field of `grid` in numpy, rejecting batched grids."""
    array = np.asarray(getattr(grid, name), dtype=dtype)
    if array.ndim != ndim:
        raise CaseError(
            f"grid.{name} has shape {array.shape}; cost curves are read from one grid, not a batch"
        )
    return array


def _polynomials(poly: np.ndarray, gens: np.ndarray) -> np.ndarray:
    """[n_gen, 3] (c2, c1, c0) of the polynomial costs of `gens` (a mask), zero elsewhere,
    refusing what a DC-OPF cannot take."""
    padded = np.c_[np.zeros((len(poly), 3)), poly]
    bad = gens & ~np.all(np.isfinite(padded), axis=1)
    if bad.any():
        raise CaseError(f"grid.cost_poly of generator {_first(bad)} is not finite")
    bad = gens & np.any(padded[:, :-3] != 0, axis=1)
    if bad.any():
        raise CaseError(
            f"grid.cost_poly of generator {_first(bad)} is of order {poly.shape[1] - 1}; the "
            "DC-OPF takes polynomials up to quadratic (as MATPOWER's)"
        )
    coefficients = np.where(gens[:, None], padded[:, -3:], 0.0)
    bad = coefficients[:, 0] < 0
    if bad.any():
        raise CaseError(
            f"grid.cost_poly of generator {_first(bad)}: negative quadratic term "
            f"{coefficients[_first(bad), 0]}"
        )
    return coefficients


def _segments(points: np.ndarray, gen: int) -> tuple[np.ndarray, np.ndarray]:
    """(slopes, intercepts) of one generator's piecewise-linear curve, checked convex."""
    if not np.all(np.isfinite(points)):
        raise CaseError(f"grid.cost_pwl of generator {gen} is not finite")
    dp = np.diff(points[:, 0])
    if np.any(dp < 0):
        raise CaseError(f"grid.cost_pwl of generator {gen}: breakpoints not in increasing MW")
    keep = dp > 0  # padding repeats the last point: zero-length segments carry no information
    if not keep.any():
        raise CaseError(f"grid.cost_pwl of generator {gen} needs at least two distinct breakpoints")
    slopes = np.diff(points[:, 1])[keep] / dp[keep]
    scale = max(1.0, float(np.max(np.abs(slopes))))
    if np.any(np.diff(slopes) < -CONVEXITY_TOLERANCE * scale):
        raise CaseError(
            f"grid.cost_pwl of generator {gen} is not convex (slopes {slopes}); the epigraph "
            "formulation needs non-decreasing slopes"
        )
    intercepts = points[:-1, 1][keep] - slopes * points[:-1, 0][keep]
    return slopes, intercepts


def gen_costs(grid: Grid, active: np.ndarray) -> GenCosts:
    """The cost curves of `grid`'s generators; only those in `active` are checked and kept."""
    model = _field(grid, "cost_model", 1, np.int64)
    polynomial = active & (model == CostModel.POLYNOMIAL)
    piecewise = active & (model == CostModel.PIECEWISE_LINEAR)
    unknown = active & ~polynomial & ~piecewise
    if unknown.any():
        gen = _first(unknown)
        raise CaseError(f"grid.cost_model of generator {gen} is {model[gen]}, not 1 or 2")
    coefficients = _polynomials(_field(grid, "cost_poly", 2), polynomial)
    pwl = _field(grid, "cost_pwl", 3)
    pwl_gens = np.flatnonzero(piecewise)
    segments = [_segments(pwl[gen], gen) for gen in pwl_gens]
    return GenCosts(
        quadratic=coefficients[:, 0],
        linear=coefficients[:, 1],
        constant=coefficients[:, 2],
        pwl_gens=pwl_gens,
        segment_gen=np.repeat(np.arange(len(pwl_gens)), [len(s) for s, _ in segments]),
        segment_slope=np.concatenate([np.zeros(0), *(s for s, _ in segments)]),
        segment_intercept=np.concatenate([np.zeros(0), *(c for _, c in segments)]),
    )


def cost_per_gen(costs: GenCosts, pg: np.ndarray) -> np.ndarray:
    """$/h of each generator at `pg` MW (0 for generators not kept in `costs`)."""
    pg = np.asarray(pg, dtype=np.float64)
    cost = (costs.quadratic * pg + costs.linear) * pg + costs.constant
    if len(costs.pwl_gens):
        lines = costs.segment_slope * pg[costs.pwl_gens][costs.segment_gen]
        lines += costs.segment_intercept
        epigraph = np.full(len(costs.pwl_gens), -np.inf)
        np.maximum.at(epigraph, costs.segment_gen, lines)
        cost[costs.pwl_gens] = epigraph
    return cost
