"""Who controls what: the agents' roles over a Grid, as padded index arrays (numpy, built once).

- `strategic`: the slow, large units (nuclear and coal) and one directive per region;
- `operational_r`: in region r, the fast units (gas, hydro), the wind and solar plants
  (curtailment) and the loads (shedding); all regions are padded to the same sizes, so the four
  operational agents share one observation and action layout (and can share one network);
- `safety`: per region, a gate that overrides the operational agent's redispatch (holding the
  units where they are) and an emergency load shed.
Padded slots point at index 0 and are switched off by their mask.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import struct

from gridrl.cases.grid import GenType, Grid

SLOW_TYPES = (GenType.NUCLEAR, GenType.COAL)
FAST_TYPES = (GenType.GAS, GenType.HYDRO, GenType.THERMAL)
RENEWABLE_TYPES = (GenType.WIND, GenType.SOLAR)

Array = jnp.ndarray


def agent_names(n_region: int) -> tuple[str, ...]:
    return ("strategic", *(f"operational_{r}" for r in range(n_region)), "safety")


AGENT_GROUPS = ("strategic", "operational", "safety")


def agent_groups(n_region: int) -> dict[str, tuple[str, ...]]:
    """{group: its agents, in `agent_names` order}: agents of one group share an observation and
    action layout (and can share one network); code keys on groups, never on name prefixes."""
    names = agent_names(n_region)
    return {"strategic": names[:1], "operational": names[1:-1], "safety": names[-1:]}


@struct.dataclass
class Layout:
    """Index arrays describing the agents' roles; [n_region, width] arrays are padded."""

    slow: Array  # int [n_slow]: units the strategic agent dispatches
    fast: Array  # int [n_region, max_fast]
    fast_mask: Array  # bool [n_region, max_fast]
    renewable: Array  # int [n_region, max_renewable]: wind and solar units
    renewable_mask: Array
    bus: Array  # int [n_region, max_bus]
    bus_mask: Array
    branch: Array  # int [n_region, max_branch]: branches touching the region (ties included)
    branch_mask: Array
    region_branches: Array  # bool [n_region, n_branch]: the same sets as masks over all branches
    bus_region: Array  # int [n_bus]
    gen_region: Array  # int [n_gen]
    dispatchable: Array  # bool [n_gen]: units that follow setpoints and share imbalances
    wind: Array  # int [n_wind]: wind units
    solar: Array  # int [n_solar]: solar units
    contingencies: Array  # int [n1]: screened branches for the N-1 indicator
    # the same roles seen from each element, for gathers (a scatter per sample is slow on CPU):
    unit_move: Array  # int [n_gen]: slot of the unit in [slow | fast.flat | a zero slot]
    unit_curtail: Array  # int [n_gen]: slot of the unit in [renewable.flat | a zero slot]
    bus_slot: Array  # int [n_bus]: slot of the bus in bus.flat
    unit_weather: Array  # int [n_gen]: slot of the unit in [wind | solar | a slot of 1]

    @property
    def n_region(self) -> int:
        return int(self.fast.shape[0])


def _padded(groups: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    width = max(1, max(len(g) for g in groups))
    index = np.zeros((len(groups), width), np.int32)
    mask = np.zeros((len(groups), width), bool)
    for r, group in enumerate(groups):
        index[r, : len(group)] = group
        mask[r, : len(group)] = True
    return index, mask


def build_layout(grid: Grid, contingencies: np.ndarray) -> Layout:
    """The roles of the agents on `grid` (numpy, once per environment)."""
    gen_type = np.asarray(grid.gen_type)
    bus_region = np.asarray(grid.region).astype(np.int32)
    gen_region = bus_region[np.asarray(grid.gen_bus)]
    n_region = int(bus_region.max()) + 1
    in_service = np.asarray(grid.gen_status, bool)
    slow = np.isin(gen_type, SLOW_TYPES) & in_service
    fast = np.isin(gen_type, FAST_TYPES) & in_service & (np.asarray(grid.pmax) > 0)
    renewable = np.isin(gen_type, RENEWABLE_TYPES) & in_service
    f_region = bus_region[np.asarray(grid.f_bus)]
    t_region = bus_region[np.asarray(grid.t_bus)]
    regions = range(n_region)
    fast_index, fast_mask = _padded([np.flatnonzero(fast & (gen_region == r)) for r in regions])
    ren_index, ren_mask = _padded([np.flatnonzero(renewable & (gen_region == r)) for r in regions])
    bus_index, bus_mask = _padded([np.flatnonzero(bus_region == r) for r in regions])
    touching = np.stack([(f_region == r) | (t_region == r) for r in regions])
    branch_index, branch_mask = _padded([np.flatnonzero(t) for t in touching])
    slow_index = np.flatnonzero(slow)
    wind = np.flatnonzero((gen_type == GenType.WIND) & in_service)
    solar = np.flatnonzero((gen_type == GenType.SOLAR) & in_service)
    return Layout(
        slow=jnp.asarray(slow_index, jnp.int32),
        fast=jnp.asarray(fast_index),
        fast_mask=jnp.asarray(fast_mask),
        renewable=jnp.asarray(ren_index),
        renewable_mask=jnp.asarray(ren_mask),
        bus=jnp.asarray(bus_index),
        bus_mask=jnp.asarray(bus_mask),
        branch=jnp.asarray(branch_index),
        branch_mask=jnp.asarray(branch_mask),
        region_branches=jnp.asarray(touching),
        bus_region=jnp.asarray(bus_region),
        gen_region=jnp.asarray(gen_region.astype(np.int32)),
        dispatchable=jnp.asarray(slow | fast),
        wind=jnp.asarray(wind, jnp.int32),
        solar=jnp.asarray(solar, jnp.int32),
        contingencies=jnp.asarray(np.asarray(contingencies, np.int32)),
        unit_move=_slots(grid.n_gen, [slow_index[:, None], fast_index], [True, fast_mask]),
        unit_curtail=_slots(grid.n_gen, [ren_index], [ren_mask]),
        bus_slot=_slots(grid.n_bus, [bus_index], [bus_mask]),
        unit_weather=_slots(grid.n_gen, [wind[:, None], solar[:, None]], [True, True]),
    )


def _slots(size: int, groups: list[np.ndarray], masks: list) -> Array:
    """int [size]: where each element sits in the concatenation of the flattened index arrays
    `groups` (their masked-out slots skipped); elements in none point past the end, at the
    zero (or one) slot the caller appends."""
    index = np.concatenate([np.asarray(g).reshape(-1) for g in groups])
    pairs = zip(groups, masks, strict=True)
    used = np.concatenate([np.broadcast_to(m, np.shape(g)).reshape(-1) for g, m in pairs])
    slots = np.full(size, index.size, np.int32)
    slots[index[used]] = np.flatnonzero(used)
    return jnp.asarray(slots)


def per_element(slots: Array, *parts: Array, fill: float = 0.0) -> Array:
    """Per-slot values (`parts`, flattened and joined) seen from each element: `slots` (from
    `_slots`) says where each element's value is; past the end, `fill`. A gather, so cheap under
    vmap (a scatter per sample is slow on CPU)."""
    values = jnp.concatenate([p.reshape(-1) for p in parts])
    return jnp.concatenate([values, jnp.full(1, fill, values.dtype)])[slots]
