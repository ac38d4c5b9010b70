"""The built-in IEEE 118-bus system, ready for grid operation.

MATPOWER's case118 as pandapower ships it, completed with what that data lacks: generator
technologies and ramp limits, wind and solar plants, thermal ratings for every branch and a
partition into four regions. Every addition is a documented, deterministic rule; docs/data.md
says what was derived, how and why. Bus ids are the IEEE bus numbers 1..118.

Only `build()` (what `gridrl.cases.load("ieee118")` returns) is on the load path: fast after
the first call, cached. `derive_ratings`, `economic_dispatch` and `secure_dispatch` are the
tooling that derived and checks the stored ratings; they compute flows with `gridrl.physics`,
which they import when called, so loading a case never needs physics.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from gridrl.cases.grid import BusType, CostModel, GenType, Grid
from gridrl.cases.partition import coupling_matrix, spectral_partition

# Generator technologies by MATPOWER case118's own cost and size (see docs/data.md).
PEAKER_LINEAR_COST = 40.0  # $/MWh: the 100 MW units the case leaves at 0 MW
NUCLEAR_MIN_MW = 700.0
COAL_MIN_MW = 150.0

# Ramp limits, % of pmax per minute: NEA (2011), Technical and Economic Aspects of Load Following
# with Nuclear Power Plants, table 2.1 (nuclear 1-5, coal 1-5, OCGT 20 %/min); EIA (2020), Today in
# Energy, "About 25% of U.S. power plants can start up within an hour" (hydro: full output from
# cold in under 10 minutes).
RAMP_PERCENT_PER_MINUTE = {
    GenType.NUCLEAR: 2.0,
    GenType.COAL: 3.0,
    GenType.GAS: 20.0,
    GenType.HYDRO: 10.0,
}

# Renewables: annual capacity factors of the U.S. utility-scale fleet (EIA, Electric Power Monthly,
# table 6.07.B, 2019-2023: wind 33-36 %, solar PV 23-25 %) and the share of the energy each
# supplies at nominal load.
CAPACITY_FACTOR = {GenType.WIND: 0.35, GenType.SOLAR: 0.25}
ENERGY_SHARE = {GenType.WIND: 0.20, GenType.SOLAR: 0.10}
CAPACITY_STEP_MW = 10.0

# Thermal ratings: rate_a = max(RATING_MARGIN * |reference flow|, RATING_FLOOR_MVA), rounded up
# to RATING_STEP_MVA (see derive_ratings).
RATING_MARGIN = 1.2
RATING_FLOOR_MVA = 50.0
RATING_STEP_MVA = 10.0

GEN_FIELDS = (
    "gen_bus", "pg", "qg", "qmax", "qmin", "vg", "pmax", "pmin", "gen_status", "ramp", "gen_type",
    "cost_model", "cost_startup", "cost_shutdown", "cost_poly", "cost_pwl",
)  # fmt: skip


def generator_types(grid: Grid) -> np.ndarray:
    """GenType per unit of case118, from its linear cost coefficient and its size.

    The case prices units at 20 or 40 $/MWh (plus a small quadratic term). The 40 $/MWh units
    (100 MW each, left at 0 MW in the case) are gas peakers; the 20 $/MWh units are nuclear from
    700 MW, coal from 150 MW, and hydro below.
    """
    linear_cost = np.asarray(grid.cost_poly)[:, -2]
    pmax = np.asarray(grid.pmax)
    return np.select(
        [linear_cost >= PEAKER_LINEAR_COST, pmax >= NUCLEAR_MIN_MW, pmax >= COAL_MIN_MW],
        [GenType.GAS, GenType.NUCLEAR, GenType.COAL],
        GenType.HYDRO,
    ).astype(np.int32)


def ramp_limits(gen_type: np.ndarray, pmax: np.ndarray) -> np.ndarray:
    """MW per minute by technology; inf for wind and solar, whose output follows the weather and
    whose curtailment is immediate."""
    percent = np.array([RAMP_PERCENT_PER_MINUTE.get(GenType(t), np.inf) for t in gen_type])
    return percent / 100.0 * np.asarray(pmax)


def renewable_sites(grid: Grid) -> list[tuple[int, GenType, float]]:
    """(bus index, WIND or SOLAR, installed MW) of the plants to add, one of each per region.

    Wind connects where the transmission network is strongest (the bus of the region without a
    generator that has the largest summed branch susceptance); solar where the load is (the
    region's largest load bus without a generator). Each region gets capacity in proportion to
    its load; the totals make each technology supply ENERGY_SHARE of the nominal load's energy
    at its CAPACITY_FACTOR.
    """
    region = np.asarray(grid.region)
    pd = np.asarray(grid.pd)
    strength = coupling_matrix(grid).sum(axis=1)
    free = np.ones(grid.n_bus, bool)
    free[np.asarray(grid.gen_bus)] = False
    sites = []
    for technology, score in ((GenType.WIND, strength), (GenType.SOLAR, pd)):
        total = ENERGY_SHARE[technology] * pd.sum() / CAPACITY_FACTOR[technology]
        for number in range(grid.n_region):
            candidates = np.flatnonzero(free & (region == number))
            bus = int(candidates[np.argmax(score[candidates])])
            capacity = total * pd[region == number].sum() / pd.sum()
            sites.append((bus, technology, CAPACITY_STEP_MW * round(capacity / CAPACITY_STEP_MW)))
            free[bus] = False
    return sites


def _with_generators(grid: Grid, extra: dict[str, np.ndarray]) -> Grid:
    """`grid` with the units in `extra` (one array per generator field) appended."""
    return grid.replace(
        **{
            field: np.concatenate([np.asarray(getattr(grid, field)), extra[field]])
            for field in GEN_FIELDS
        }
    )


def add_renewables(grid: Grid, sites: list[tuple[int, GenType, float]]) -> Grid:
    """`grid` with a zero-cost, unity-power-factor plant per site, producing its nominal output
    (capacity times capacity factor)."""
    bus = np.array([site[0] for site in sites], np.int32)
    technology = np.array([site[1] for site in sites], np.int32)
    capacity = np.array([site[2] for site in sites], float)
    nominal = capacity * np.array([CAPACITY_FACTOR[GenType(t)] for t in technology])
    n = len(sites)
    zeros = np.zeros(n)
    return _with_generators(
        grid,
        {
            "gen_bus": bus,
            "pg": nominal,
            "qg": zeros,
            "qmax": zeros,
            "qmin": zeros,
            "vg": np.ones(n),
            "pmax": capacity,
            "pmin": zeros,
            "gen_status": np.ones(n, bool),
            "ramp": np.full(n, np.inf),
            "gen_type": technology,
            "cost_model": np.full(n, CostModel.POLYNOMIAL, np.int32),
            "cost_startup": zeros,
            "cost_shutdown": zeros,
            "cost_poly": np.zeros((n, np.asarray(grid.cost_poly).shape[1])),
            "cost_pwl": np.zeros((n, *np.asarray(grid.cost_pwl).shape[1:])),
        },
    )


def _renewable(grid: Grid) -> np.ndarray:
    return np.isin(np.asarray(grid.gen_type), (GenType.WIND, GenType.SOLAR))


def reference_dispatch(grid: Grid) -> np.ndarray:
    """The dispatch the ratings are derived from: renewables at their nominal output, and the
    thermal units the case dispatches (pg > 0 in case118, the slack included) sharing the rest
    of the load in proportion to their pmax; the case's idle units stay at 0 MW."""
    renewable = _renewable(grid)
    pg = np.asarray(grid.pg)
    slack = np.asarray(grid.bus_type)[np.asarray(grid.gen_bus)] == BusType.REF
    running = ~renewable & ((pg > 0) | slack)
    pmax = np.where(running, np.asarray(grid.pmax), 0.0)
    thermal_load = np.asarray(grid.pd).sum() - pg[renewable].sum()
    return np.where(renewable, pg, pmax * thermal_load / pmax.sum())


def _case118() -> Grid:
    """case118 via pandapower, with IEEE bus numbers and pandapower's 1e-10 MW bound padding
    removed."""
    import pandapower.networks

    from gridrl.cases.pandapower import from_pandapower

    net = pandapower.networks.case118()
    grid = from_pandapower(net, name="ieee118")
    bus_numbers = tuple(int(net.bus.name.at[index]) for index in grid.bus_ids)
    return grid.replace(
        bus_ids=bus_numbers,
        pmax=np.round(np.asarray(grid.pmax), 6),
        pmin=np.maximum(np.round(np.asarray(grid.pmin), 6), 0.0),
    )


def unrated_ieee118() -> Grid:
    """ieee118 before ratings: types, ramps, regions, renewables and the reference dispatch
    as `pg`; rate_a is inf. The input of `derive_ratings`."""
    grid = _case118()
    gen_type = generator_types(grid)
    grid = grid.replace(gen_type=gen_type, ramp=ramp_limits(gen_type, grid.pmax))
    grid = grid.replace(region=spectral_partition(grid))
    grid = add_renewables(grid, renewable_sites(grid))
    # case118 has no ratings; pandapower's 9900 MVA are placeholders for "unlimited"
    return grid.replace(pg=reference_dispatch(grid), rate_a=np.full(grid.n_branch, np.inf))


def read_only(grid: Grid) -> Grid:
    """`grid` with every array a read-only numpy copy, so that a cached grid cannot be changed
    in place by one of its users."""

    def frozen(leaf) -> np.ndarray:
        array = np.array(leaf)
        array.flags.writeable = False
        return array

    return jax.tree_util.tree_map(frozen, grid)


@functools.lru_cache(maxsize=1)
def build() -> Grid:
    """The built-in IEEE 118-bus grid (cached per process; its arrays are read-only)."""
    grid = unrated_ieee118()
    if len(RATE_A) != grid.n_branch:
        raise RuntimeError("ieee118: the stored ratings do not match the branch count")
    return read_only(grid.replace(rate_a=np.array(RATE_A, float)))


# --- tooling: how the stored ratings were derived and how they are checked (not on load path) ---


def _flows(grid: Grid, pg: np.ndarray) -> np.ndarray:
    from gridrl.physics import dc_power_flow

    return np.asarray(dc_power_flow(grid, pg=np.asarray(pg)).pf)


def derive_ratings(grid: Grid) -> np.ndarray:
    """rate_a (MVA) per branch: RATING_MARGIN times the DC flow at the reference dispatch, at
    least RATING_FLOOR_MVA, rounded up to RATING_STEP_MVA. `grid` is `unrated_ieee118()`."""
    flow = np.abs(_flows(grid, reference_dispatch(grid)))
    rating = np.maximum(RATING_MARGIN * flow, RATING_FLOOR_MVA)
    # the tolerance keeps a rating that is a whole step up to rounding (e.g. the floor) unchanged
    return RATING_STEP_MVA * np.ceil(rating / RATING_STEP_MVA - 1e-9)


def economic_dispatch(grid: Grid) -> np.ndarray:
    """The unconstrained economic dispatch (network ignored) at the grid's load, MW per unit.

    Wind and solar produce their `pg` (free energy, taken first); the thermal units meet the rest
    at equal marginal cost (bisection on the system lambda of their quadratic costs).
    """
    renewable = _renewable(grid)
    poly = np.asarray(grid.cost_poly)
    thermal = ~renewable & np.asarray(grid.gen_status, bool)
    if poly.shape[1] != 3 or np.any(poly[thermal, 0] <= 0):
        raise ValueError("economic_dispatch needs quadratic costs with c2 > 0 for thermal units")
    c2, c1 = np.where(thermal, poly[:, 0], 1.0), poly[:, 1]
    pmin = np.where(thermal, np.asarray(grid.pmin), 0.0)
    pmax = np.where(thermal, np.asarray(grid.pmax), 0.0)
    demand = np.asarray(grid.pd).sum() + np.asarray(grid.gs).sum()
    thermal_demand = demand - np.asarray(grid.pg)[renewable].sum()
    if not pmin.sum() <= thermal_demand <= pmax.sum():
        raise ValueError(f"economic_dispatch: {thermal_demand:.1f} MW is outside the units' range")

    def output(price: float) -> np.ndarray:
        return np.clip((price - c1) / (2 * c2), pmin, pmax)

    low, high = float(np.min(c1)), float(np.max(c1 + 2 * c2 * pmax))
    for _ in range(100):  # halves a bracket of at most ~1e3 $/MWh far below 1e-9 $/MWh
        price = 0.5 * (low + high)
        low, high = (price, high) if output(price).sum() < thermal_demand else (low, price)
    return np.where(renewable, np.asarray(grid.pg), output(0.5 * (low + high)))


def secure_dispatch(grid: Grid) -> np.ndarray | None:
    """A dispatch within every unit's limits and every branch's rate_a at the grid's load, with
    wind and solar at their `pg` (no curtailment), of least linear cost (c1): an LP over pg with
    PTDF flow limits solved by HiGHS. None when no such dispatch exists."""
    import scipy.optimize

    from gridrl.physics import ptdf

    if np.any(np.asarray(grid.cost_model) != CostModel.POLYNOMIAL):
        raise ValueError("secure_dispatch prices units by their polynomial cost's c1")
    reference = np.asarray(grid.pg, float)
    base_flow = _flows(grid, reference)
    unit_ptdf = np.asarray(ptdf(grid))[:, np.asarray(grid.gen_bus)]  # [n_branch, n_gen]
    rate = np.asarray(grid.rate_a)
    rated = np.isfinite(rate)
    # flows are affine in pg: a balanced change of dispatch moves them by PTDF times the change
    # (the reference bus's PTDF column is zero, so the slack's balancing of `reference` cancels)
    offset = base_flow[rated] - unit_ptdf[rated] @ reference
    renewable = _renewable(grid)
    on = np.asarray(grid.gen_status, bool)
    lower = np.where(renewable, reference, np.asarray(grid.pmin)) * on
    upper = np.where(renewable, reference, np.asarray(grid.pmax)) * on
    result = scipy.optimize.linprog(
        c=np.asarray(grid.cost_poly)[:, -2],
        A_ub=np.vstack([unit_ptdf[rated], -unit_ptdf[rated]]),
        b_ub=np.concatenate([rate[rated] - offset, rate[rated] + offset]),
        A_eq=np.ones((1, grid.n_gen)),
        b_eq=[np.asarray(grid.pd).sum() + np.asarray(grid.gs).sum()],
        bounds=np.column_stack([lower, upper]),
        method="highs",
    )
    return result.x if result.status == 0 else None


# rate_a per branch (MVA), internal branch order: derive_ratings(unrated_ieee118()), stored so
# that loading needs no physics; tests/test_ieee118.py checks the two agree.
# fmt: off
RATE_A: tuple[float, ...] = (
    50, 50, 110, 80, 100, 50, 310, 310, 60, 80, 90, 50, 50, 50, 60, 50,
    50, 50, 50, 90, 50, 90, 50, 50, 50, 50, 50, 50, 50, 150, 130, 50,
    50, 110, 140, 50, 50, 80, 50, 50, 50, 50, 50, 50, 50, 50, 140, 90,
    80, 50, 60, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 60, 60, 50,
    50, 70, 80, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
    50, 50, 50, 70, 70, 50, 50, 50, 180, 90, 180, 100, 100, 50, 50, 50,
    50, 50, 120, 50, 50, 50, 50, 50, 50, 50, 140, 60, 70, 100, 50, 80,
    50, 80, 50, 70, 50, 50, 50, 50, 50, 50, 50, 50, 60, 70, 120, 50,
    110, 50, 50, 50, 50, 50, 60, 50, 50, 50, 50, 50, 50, 50, 90, 50,
    50, 50, 50, 50, 50, 50, 100, 60, 50, 60, 70, 50, 50, 50, 50, 50,
    50, 60, 50, 80, 90, 50, 50, 50, 50, 50, 50, 60, 50, 170, 100, 230,
    110, 180, 50, 50, 50, 50, 100, 100, 60, 230,
)
# fmt: on
