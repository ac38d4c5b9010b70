"""The built-in IEEE 118-bus system, ready for grid operation.

MATPOWER's case118 as pandapower ships it, completed with what that data lacks: generator
technologies and ramp limits, wind and solar plants, thermal ratings for every branch and a
partition into four regions. Every addition is a documented, deterministic rule; docs/data.md
says what was derived, how and why. Bus ids are the IEEE bus numbers 1..118.

Only `build()` (what `gridrl.cases.load("ieee118")` returns) is on the load path: fast after
the first call, cached. The stored ratings `RATE_A` were derived, and are checked, by the
tooling in `gridrl.opf.ratings`, so loading a case needs neither weather data nor solvers.
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

# Renewables: the capacity-weighted capacity factors of the measured profiles as gridrl.env assigns
# its weather sites to the plants (docs/data.md: wind 0.375, solar 0.196), and the share of the
# nominal load's energy each supplies.
CAPACITY_FACTOR = {GenType.WIND: 0.37, GenType.SOLAR: 0.20}
ENERGY_SHARE = {GenType.WIND: 0.20, GenType.SOLAR: 0.08}
PLANTS_PER_REGION = 2
CAPACITY_STEP_MW = 10.0

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
    """(bus index, WIND or SOLAR, installed MW) of the plants to add: PLANTS_PER_REGION of each
    technology per region, wind first, region by region.

    Plants connect at buses without a generator. Wind goes where the network is strongest: the
    region's buses of highest voltage (345 kV where it has them), then of largest summed branch
    susceptance; solar where the load is (the region's largest load buses). Each region gets
    capacity in proportion to its load, shared equally by its plants; the totals make each
    technology supply ENERGY_SHARE of the nominal load's energy at its CAPACITY_FACTOR.
    """
    region = np.asarray(grid.region)
    pd = np.asarray(grid.pd)
    # voltage first, then strength (susceptances are far below 1e6 p.u. per kV)
    wind_score = 1e6 * np.asarray(grid.base_kv) + coupling_matrix(grid).sum(axis=1)
    free = np.ones(grid.n_bus, bool)
    free[np.asarray(grid.gen_bus)] = False
    sites = []
    for technology, score in ((GenType.WIND, wind_score), (GenType.SOLAR, pd)):
        total = ENERGY_SHARE[technology] * pd.sum() / CAPACITY_FACTOR[technology]
        for number in range(grid.n_region):
            candidates = np.flatnonzero(free & (region == number))
            best = candidates[np.argsort(-score[candidates], kind="stable")[:PLANTS_PER_REGION]]
            plant = total * pd[region == number].sum() / pd.sum() / PLANTS_PER_REGION
            for bus in best:
                capacity = CAPACITY_STEP_MW * round(plant / CAPACITY_STEP_MW)
                sites.append((int(bus), technology, capacity))
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


def nominal_dispatch(grid: Grid) -> np.ndarray:
    """The grid's own dispatch (its `pg`) at the nominal load: renewables at their nominal
    output, and the thermal units the case dispatches (pg > 0 in case118, the slack included)
    sharing the rest of the load in proportion to their pmax; the case's idle units stay at
    0 MW. gridrl.env scales these shares to each step's net load."""
    renewable = np.isin(np.asarray(grid.gen_type), (GenType.WIND, GenType.SOLAR))
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
    """ieee118 before ratings: types, ramps, regions, renewables and the nominal dispatch as
    `pg`; rate_a is inf. The input of `gridrl.opf.ratings.derive_ratings`."""
    grid = _case118()
    gen_type = generator_types(grid)
    grid = grid.replace(gen_type=gen_type, ramp=ramp_limits(gen_type, grid.pmax))
    grid = grid.replace(region=spectral_partition(grid))
    grid = add_renewables(grid, renewable_sites(grid))
    # case118 has no ratings; pandapower's 9900 MVA are placeholders for "unlimited"
    return grid.replace(pg=nominal_dispatch(grid), rate_a=np.full(grid.n_branch, np.inf))


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


# rate_a per branch (MVA), internal branch order: gridrl.opf.ratings.derive_ratings over the
# measured year's hours (docs/data.md), stored so that loading needs neither weather nor solvers;
# tests/test_ieee118.py checks the two agree.
# fmt: off
RATE_A: tuple[float, ...] = (
    100, 110, 120, 100, 100, 100, 460, 400, 100, 100, 120, 100, 100, 100, 100, 100,
    100, 100, 100, 110, 100, 100, 100, 100, 100, 100, 100, 100, 100, 140, 110, 100,
    100, 400, 400, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 160, 100,
    100, 400, 100, 130, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100,
    100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100,
    100, 100, 100, 100, 100, 130, 100, 100, 400, 400, 400, 100, 100, 100, 100, 100,
    100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 110, 100, 100, 100, 100, 170,
    100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 130, 100, 100, 100,
    130, 100, 100, 100, 100, 100, 100, 100, 110, 130, 100, 100, 100, 100, 200, 130,
    100, 100, 100, 100, 100, 100, 140, 100, 100, 100, 100, 100, 100, 100, 100, 100,
    100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 400, 400, 400,
    400, 400, 400, 400, 400, 170, 400, 400, 100, 400,
)
# fmt: on
