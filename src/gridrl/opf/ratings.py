"""Thermal ratings for a grid that must be operable over a year of weather, and the checks.

Tooling behind `gridrl.cases.ieee118.RATE_A` (numpy, HiGHS and the AC solver, never on a load or
step path):

- `OperatingPoints`: load and renewable availability, e.g. every 5-minute step of the measured
  year (`profile_points`);
- `reference_dispatch`: the dispatch `gridrl.env` starts an episode from at such a point;
- `derive_ratings`: rate_a = max(voltage-class floor, margin × a high quantile of |DC flow| under
  that dispatch over the points, the same quantile of the AC apparent power), rounded up;
- `economic_dispatch` (network ignored) and `secure_dispatch` (a DC-OPF within ratings, with or
  without curtailment): the properties the ratings are checked for.

docs/data.md gives the derivation and the numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from gridrl.cases.grid import BusType, CostModel, GenType, Grid
from gridrl.opf.dcopf import DcOpfSolver, build_dc_opf
from gridrl.opf.network import dc_network
from gridrl.physics.ac import ac_power_flow

RENEWABLE_TYPES = (GenType.WIND, GenType.SOLAR)

# rate_a = max(floor, RATING_MARGIN × the RATING_QUANTILE of |DC flow| over the points, the
# RATING_QUANTILE of the AC apparent power), rounded up to RATING_STEP_MVA. The margin covers what
# the DC flows leave out (reactive flow, the environment's load and weather noise) on most
# branches; on the few that carry much reactive power it does not, and the AC term keeps the
# grid operable under both physics of the environment. The quantile leaves each branch's most
# extreme 0.5 % of the year (about 44 hours) to be handled by redispatch.
RATING_MARGIN = 1.1
RATING_QUANTILE = 0.995
RATING_STEP_MVA = 10.0
# (lowest kV of the class, floor MVA), highest class first; a branch's class is that of its
# higher-voltage end. About the St. Clair loadability of a long line of the class: twice the
# surge-impedance loading at 138 kV (SIL ≈ 50 MW), once at 345 kV (SIL ≈ 400 MW); both below
# the thermal limits of the conductors used at those voltages (docs/data.md).
RATING_FLOOR_MVA: tuple[tuple[float, float], ...] = ((300.0, 400.0), (0.0, 100.0))
# The points ratings are derived from: the 5-minute step at the start of every hour of the year
# (the weather is measured hourly; the steps between interpolate it).
HOURLY_STEPS = slice(0, None, 12)


@dataclass(frozen=True)
class OperatingPoints:
    """n operating points: system load per unit of the grid's `pd` (its annual peak) and the
    MW each generator can give (wind and solar: the weather's availability; others: pmax)."""

    load: np.ndarray  # [n]
    available: np.ndarray  # [n, n_gen] MW

    def __post_init__(self) -> None:
        load, available = np.asarray(self.load, float), np.asarray(self.available, float)
        if load.ndim != 1 or available.ndim != 2 or available.shape[0] != load.shape[0]:
            raise ValueError("OperatingPoints: load must be [n] and available [n, n_gen]")
        if not (np.all(np.isfinite(load)) and np.all(np.isfinite(available))):
            raise ValueError("OperatingPoints: load and available must be finite")
        if np.any(load < 0) or np.any(available < 0):
            raise ValueError("OperatingPoints: load and available must be >= 0")

    def __len__(self) -> int:
        return int(np.shape(self.load)[0])

    def demand(self, grid: Grid) -> np.ndarray:
        """[n, n_bus] MW: each bus's case load scaled by the point's system load."""
        return np.asarray(self.load, float)[:, None] * np.asarray(grid.pd, float)

    def select(self, index: np.ndarray) -> OperatingPoints:
        return OperatingPoints(np.asarray(self.load)[index], np.asarray(self.available)[index])


def renewable(grid: Grid) -> np.ndarray:
    """bool [n_gen]: wind and solar units."""
    return np.isin(np.asarray(grid.gen_type), RENEWABLE_TYPES)


def profile_points(
    grid: Grid,
    profiles,
    wind_sites: Sequence[str],
    solar_sites: Sequence[str],
    days: np.ndarray | None = None,
    steps: slice = slice(None),
) -> OperatingPoints:
    """The `steps` of each of `days` (all when None) of `gridrl.timeseries.Profiles`, the k-th
    wind (solar) plant in case order following site `wind_sites[k % len(wind_sites)]` (as
    `gridrl.env` assigns them), without the environment's noise."""
    days = np.arange(np.shape(profiles.load)[0]) if days is None else np.asarray(days)
    load = np.asarray(profiles.load, float)[days][:, steps].reshape(-1)
    available = np.broadcast_to(np.asarray(grid.pmax, float), (load.size, grid.n_gen)).copy()
    gen_type = np.asarray(grid.gen_type)
    for technology, table, names, cycle in (
        (GenType.WIND, profiles.wind, profiles.wind_sites, wind_sites),
        (GenType.SOLAR, profiles.solar, profiles.solar_sites, solar_sites),
    ):
        for k, unit in enumerate(np.flatnonzero(gen_type == technology)):
            site = names.index(cycle[k % len(cycle)])
            per_unit = np.asarray(table, float)[days][:, steps, site].reshape(-1)
            available[:, unit] = per_unit * float(np.asarray(grid.pmax)[unit])
    return OperatingPoints(load, available)


def reference_dispatch(grid: Grid, points: OperatingPoints) -> np.ndarray:
    """[n, n_gen] MW: the dispatch `GridEnv.reset` starts from at each point.

    Wind and solar give their availability; the dispatchable units (in service, not renewable)
    share the rest of the demand in proportion to the grid's own `pg`, within their limits;
    what limits leave over is shared in proportion to headroom, and a surplus the units cannot
    absorb is spilled from the renewables in proportion to their output.
    """
    on = np.asarray(grid.gen_status, bool)
    weather = renewable(grid) & on
    dispatchable = ~renewable(grid) & on
    pmin, available = np.asarray(grid.pmin, float), np.asarray(points.available, float)
    demand = points.demand(grid).sum(axis=1) + np.asarray(grid.gs, float).sum()
    green = np.where(weather, available, 0.0)
    share = np.where(dispatchable, np.asarray(grid.pg, float), 0.0)
    net = demand - green.sum(axis=1)
    scaled = share * (net / max(share.sum(), 1e-6))[:, None]
    lower = np.where(dispatchable, np.minimum(pmin, available), 0.0)
    upper = np.where(dispatchable, available, 0.0)
    target = np.where(dispatchable, np.clip(scaled, pmin, available), green)
    need = demand - target.sum(axis=1)
    held = np.where(dispatchable, target, 0.0)
    up, down = upper - held, held - lower
    raised = np.clip(need, 0.0, up.sum(axis=1)) / np.maximum(up.sum(axis=1), 1e-9)
    lowered = np.clip(-need, 0.0, down.sum(axis=1)) / np.maximum(down.sum(axis=1), 1e-9)
    pg = target + up * raised[:, None] - down * lowered[:, None]
    surplus = np.maximum(-need - down.sum(axis=1), 0.0)
    spill = np.minimum(surplus / np.maximum(green.sum(axis=1), 1e-9), 1.0)
    return pg - green * spill[:, None]


def shift_factors(grid: Grid) -> np.ndarray:
    """[n_branch, n_bus]: MW of from-end flow per MW injected at a bus and taken at the
    reference bus (DC, MATPOWER's makePTDF), float64."""
    network = dc_network(grid)
    keep = network.bus_active & (np.asarray(grid.bus_type) != BusType.REF)
    reactance = np.zeros((grid.n_bus, grid.n_bus))
    reactance[np.ix_(keep, keep)] = np.linalg.inv(network.bbus.toarray()[np.ix_(keep, keep)])
    return network.bf.toarray() @ reactance


def branch_flows(grid: Grid, points: OperatingPoints, pg: np.ndarray) -> np.ndarray:
    """[n, n_branch] MW at the from end: DC flows of dispatch `pg` [n, n_gen] at the points,
    phase shifters included. The dispatch must balance the demand (the reference bus takes
    any mismatch)."""
    network = dc_network(grid)
    base = float(grid.base_mva)
    on = np.asarray(grid.gen_status, bool)
    connection = np.zeros((grid.n_gen, grid.n_bus))
    connection[np.flatnonzero(on), np.asarray(grid.gen_bus)[on]] = 1.0
    injection = np.asarray(pg, float) @ connection - points.demand(grid) - np.asarray(grid.gs)
    shifted = injection / base - network.pbusinj
    return (shifted @ shift_factors(grid).T + network.pfinj) * base


def branch_apparent_flows(grid: Grid, points: OperatingPoints, pg: np.ndarray) -> np.ndarray:
    """[n, n_branch] MVA at the more loaded end of each branch: AC power flows (float64) of
    dispatch `pg` [n, n_gen] at the points, reactive loads scaled with the active ones as the
    environment scales them (`Grid.reactive_ratio`), generators at the case's voltage setpoints,
    the losses taken by the reference bus."""
    pd = points.demand(grid)
    with jax.enable_x64(True):
        result = ac_power_flow(
            grid.astype(jnp.float64),
            pd=jnp.asarray(pd),
            qd=jnp.asarray(pd * grid.reactive_ratio),
            pg=jnp.asarray(pg, jnp.float64),
        )
        failed = np.flatnonzero(~np.asarray(result.converged))
        if failed.size:
            raise RuntimeError(f"branch_apparent_flows: no AC solution at points {failed[:5]}")
        return np.asarray(result.apparent_mva)


def rating_floor(grid: Grid) -> np.ndarray:
    """[n_branch] MVA: RATING_FLOOR_MVA by each branch's higher-voltage end."""
    kv = np.asarray(grid.base_kv, float)
    branch_kv = np.maximum(kv[np.asarray(grid.f_bus)], kv[np.asarray(grid.t_bus)])
    floor = np.full(grid.n_branch, np.nan)
    for lowest_kv, mva in RATING_FLOOR_MVA:
        floor = np.where(np.isnan(floor) & (branch_kv >= lowest_kv), mva, floor)
    return floor


def derive_ratings(grid: Grid, points: OperatingPoints) -> np.ndarray:
    """rate_a (MVA) per branch: RATING_MARGIN × the RATING_QUANTILE of |DC flow| under the
    reference dispatch over `points`, at least the RATING_QUANTILE of its AC apparent power and
    the branch's voltage-class floor, rounded up to RATING_STEP_MVA."""
    pg = reference_dispatch(grid, points)
    dc = np.abs(branch_flows(grid, points, pg))
    ac = branch_apparent_flows(grid, points, pg)
    rating = np.maximum.reduce(
        [
            RATING_MARGIN * np.quantile(dc, RATING_QUANTILE, axis=0),
            np.quantile(ac, RATING_QUANTILE, axis=0),
            rating_floor(grid),
        ]
    )
    # the tolerance keeps a rating that is a whole step up to rounding (e.g. a floor) unchanged
    return RATING_STEP_MVA * np.ceil(rating / RATING_STEP_MVA - 1e-9)


def economic_dispatch(grid: Grid) -> np.ndarray:
    """The unconstrained economic dispatch (network ignored) at the grid's load, MW per unit.

    Wind and solar produce their `pg` (free energy, taken first); the thermal units meet the rest
    at equal marginal cost (bisection on the system lambda of their quadratic costs).
    """
    green = renewable(grid)
    poly = np.asarray(grid.cost_poly)
    thermal = ~green & np.asarray(grid.gen_status, bool)
    if poly.shape[1] != 3 or np.any(poly[thermal, 0] <= 0):
        raise ValueError("economic_dispatch needs quadratic costs with c2 > 0 for thermal units")
    c2, c1 = np.where(thermal, poly[:, 0], 1.0), poly[:, 1]
    pmin = np.where(thermal, np.asarray(grid.pmin), 0.0)
    pmax = np.where(thermal, np.asarray(grid.pmax), 0.0)
    demand = np.asarray(grid.pd).sum() + np.asarray(grid.gs).sum()
    thermal_demand = demand - np.asarray(grid.pg)[green].sum()
    if not pmin.sum() <= thermal_demand <= pmax.sum():
        raise ValueError(f"economic_dispatch: {thermal_demand:.1f} MW is outside the units' range")

    def output(price: float) -> np.ndarray:
        return np.clip((price - c1) / (2 * c2), pmin, pmax)

    low, high = float(np.min(c1)), float(np.max(c1 + 2 * c2 * pmax))
    for _ in range(100):  # halves a bracket of at most ~1e3 $/MWh far below 1e-9 $/MWh
        price = 0.5 * (low + high)
        low, high = (price, high) if output(price).sum() < thermal_demand else (low, price)
    return np.where(green, np.asarray(grid.pg), output(0.5 * (low + high)))


def nominal_point(grid: Grid) -> OperatingPoints:
    """The grid's own operating point: load = pd, wind and solar at their `pg`."""
    available = np.where(renewable(grid), np.asarray(grid.pg, float), np.asarray(grid.pmax))
    return OperatingPoints(np.ones(1), available[None])


def secure_dispatch(
    grid: Grid, points: OperatingPoints, *, curtailment: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(feasible [n] bool, pg [n, n_gen] MW): at each point, a dispatch within every unit's
    limits and every branch's rate_a, of least linear cost (c1 of the polynomial costs): the
    DC-OPF of `gridrl.opf` as an LP, re-solved per point. Wind and solar give exactly their
    availability, or, with `curtailment`, anything between 0 and it. Rows of infeasible points
    are zeros.

    An LP because only existence matters here, and HiGHS's QP solver reports a solve error on
    about 1 % of the year's points with case118's quadratic costs."""
    poly = np.asarray(grid.cost_poly, float)
    if np.any(np.asarray(grid.cost_model) != CostModel.POLYNOMIAL) or poly.shape[1] < 2:
        raise ValueError("secure_dispatch prices units by their polynomial cost's c1")
    linear = np.zeros_like(poly)
    linear[:, -2:] = poly[:, -2:]
    solver = DcOpfSolver(build_dc_opf(grid.replace(cost_poly=linear)))
    green = renewable(grid)
    pmin = np.asarray(grid.pmin, float)
    demand = points.demand(grid)
    feasible = np.zeros(len(points), bool)
    pg = np.zeros((len(points), grid.n_gen))
    for i in range(len(points)):
        available = np.asarray(points.available[i], float)
        floor = np.where(green, 0.0 if curtailment else available, np.minimum(pmin, available))
        solver.set_load(demand[i], np.asarray(grid.gs, float))
        solver.set_gen_limits(floor, available)
        result = solver.solve()
        feasible[i] = result.success
        pg[i] = result.pg if result.success else 0.0
    return feasible, pg
