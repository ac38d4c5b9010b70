"""Generator cost curves of a Grid as the OPF uses them: quadratic polynomials and convex
piecewise-linear curves (MATPOWER gencost models 2 and 1), in MW and $/h."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridrl.cases.grid import CostModel, Grid
from gridrl.opf.network import OpfInputError, host_array

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


def _polynomial(poly: np.ndarray, gen: int) -> tuple[float, float, float]:
    """(c2, c1, c0) of one generator's polynomial, refusing what a DC-OPF cannot take."""
    if not np.all(np.isfinite(poly)):
        raise OpfInputError(f"grid.cost_poly of generator {gen} is not finite: {poly}")
    *higher, c2, c1, c0 = np.r_[np.zeros(3), poly]
    if np.any(np.asarray(higher) != 0):
        raise OpfInputError(
            f"grid.cost_poly of generator {gen} is of order {len(poly) - 1}; the DC-OPF takes "
            "polynomials up to quadratic (as MATPOWER's)"
        )
    if c2 < 0:
        raise OpfInputError(f"grid.cost_poly of generator {gen}: negative quadratic term {c2}")
    return c2, c1, c0


def _segments(points: np.ndarray, gen: int) -> tuple[np.ndarray, np.ndarray]:
    """(slopes, intercepts) of one generator's piecewise-linear curve, checked convex."""
    if not np.all(np.isfinite(points)):
        raise OpfInputError(f"grid.cost_pwl of generator {gen} is not finite")
    dp = np.diff(points[:, 0])
    if np.any(dp < 0):
        raise OpfInputError(f"grid.cost_pwl of generator {gen}: breakpoints not in increasing MW")
    keep = dp > 0  # padding repeats the last point: zero-length segments carry no information
    if not keep.any():
        raise OpfInputError(
            f"grid.cost_pwl of generator {gen} needs at least two distinct breakpoints"
        )
    slopes = np.diff(points[:, 1])[keep] / dp[keep]
    scale = max(1.0, float(np.max(np.abs(slopes))))
    if np.any(np.diff(slopes) < -CONVEXITY_TOLERANCE * scale):
        raise OpfInputError(
            f"grid.cost_pwl of generator {gen} is not convex (slopes {slopes}); the epigraph "
            "formulation needs non-decreasing slopes"
        )
    intercepts = points[:-1, 1][keep] - slopes * points[:-1, 0][keep]
    return slopes, intercepts


def gen_costs(grid: Grid, active: np.ndarray) -> GenCosts:
    """The cost curves of `grid`'s generators; only those in `active` are checked and kept."""
    model = host_array(grid, "cost_model", np.int64)
    poly = host_array(grid, "cost_poly")
    pwl = host_array(grid, "cost_pwl")
    n_gen = len(model)
    coefficients = np.zeros((n_gen, 3))
    pwl_gens, slopes, intercepts, owner = [], [], [], []
    for gen in np.flatnonzero(active):
        if model[gen] == CostModel.POLYNOMIAL:
            coefficients[gen] = _polynomial(poly[gen], gen)
        elif model[gen] == CostModel.PIECEWISE_LINEAR:
            gen_slopes, gen_intercepts = _segments(pwl[gen], gen)
            owner.append(np.full(len(gen_slopes), len(pwl_gens)))
            pwl_gens.append(gen)
            slopes.append(gen_slopes)
            intercepts.append(gen_intercepts)
        else:
            raise OpfInputError(f"grid.cost_model of generator {gen} is {model[gen]}, not 1 or 2")
    return GenCosts(
        quadratic=coefficients[:, 0],
        linear=coefficients[:, 1],
        constant=coefficients[:, 2],
        pwl_gens=np.asarray(pwl_gens, dtype=np.int64),
        segment_gen=np.concatenate([np.zeros(0, np.int64), *owner]),
        segment_slope=np.concatenate([np.zeros(0), *slopes]),
        segment_intercept=np.concatenate([np.zeros(0), *intercepts]),
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
