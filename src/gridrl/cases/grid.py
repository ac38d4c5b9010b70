"""`Grid`: the static description of a transmission network, as a JAX pytree.

Every array follows the case's own element order (MATPOWER / pandapower internal order), with
buses renumbered 0..n_bus-1 ("internal order"); `bus_ids` maps back to the case's bus numbers.
Units are the case's: MW, MVAr, $/h, per-unit voltages, with angles converted to radians.
Physics converts to per-unit on `base_mva` itself. A topology change (a branch out, a unit
tripped) is a mask passed alongside the grid, never a change of shape, so functions over a Grid
compile once and vmap over many grids.
"""

from __future__ import annotations

from enum import IntEnum

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

Array = jnp.ndarray | np.ndarray


class BusType(IntEnum):
    """MATPOWER bus types."""

    PQ = 1
    PV = 2
    REF = 3
    ISOLATED = 4


class GenType(IntEnum):
    """Generator technologies; MATPOWER files carry none, so readers default to THERMAL."""

    THERMAL = 0
    COAL = 1
    GAS = 2
    NUCLEAR = 3
    HYDRO = 4
    WIND = 5
    SOLAR = 6
    SYNCHRONOUS_CONDENSER = 7


class CostModel(IntEnum):
    """MATPOWER gencost models."""

    PIECEWISE_LINEAR = 1
    POLYNOMIAL = 2


@struct.dataclass
class Grid:
    """A transmission network: buses, generators and branches as arrays, plus metadata.

    Array fields are pytree leaves (they may carry leading batch dimensions after `vmap`);
    the fields marked static are hashable metadata that travel in the tree structure.
    """

    # --- buses [n_bus] ---
    bus_type: Array  # int, BusType
    pd: Array  # active load, MW
    qd: Array  # reactive load, MVAr
    gs: Array  # shunt conductance, MW consumed at V = 1 p.u.
    bs: Array  # shunt susceptance, MVAr injected at V = 1 p.u.
    vm: Array  # voltage magnitude (initial guess / case value), p.u.
    va: Array  # voltage angle (initial guess / case value), rad
    base_kv: Array  # kV
    vmax: Array  # p.u.
    vmin: Array  # p.u.
    region: Array  # int, region index per bus (0 where the case has no partition)
    # --- generators [n_gen] ---
    gen_bus: Array  # int, internal bus index
    pg: Array  # MW
    qg: Array  # MVAr
    qmax: Array  # MVAr
    qmin: Array  # MVAr
    vg: Array  # voltage setpoint, p.u.
    pmax: Array  # MW
    pmin: Array  # MW
    gen_status: Array  # bool
    ramp: Array  # MW per minute (MATPOWER RAMP_AGC); inf where the case gives none
    gen_type: Array  # int, GenType
    cost_model: Array  # int, CostModel
    cost_startup: Array  # $
    cost_shutdown: Array  # $
    # polynomial costs: coefficients highest order first ($/h per MW^k), zero padded in front
    cost_poly: Array  # [n_gen, n_poly]
    # piecewise-linear costs: (MW, $/h) breakpoints, padded by repeating the last point
    cost_pwl: Array  # [n_gen, n_points, 2]
    # --- branches [n_branch] ---
    f_bus: Array  # int, internal bus index of the from end
    t_bus: Array  # int, internal bus index of the to end
    r: Array  # p.u.
    x: Array  # p.u.
    b: Array  # total line charging susceptance, p.u.
    g: Array  # total line charging conductance, p.u. (pandapower lines; 0 for MATPOWER files)
    rate_a: Array  # long-term thermal rating, MVA; inf where the case gives none
    tap: Array  # off-nominal turns ratio (1 for lines)
    shift: Array  # phase shift, rad
    branch_status: Array  # bool
    angmin: Array  # rad
    angmax: Array  # rad
    # --- metadata (static) ---
    base_mva: float = struct.field(pytree_node=False, default=100.0)
    bus_ids: tuple[int, ...] = struct.field(pytree_node=False, default=())
    name: str = struct.field(pytree_node=False, default="")

    @property
    def n_bus(self) -> int:
        return int(self.pd.shape[-1])

    @property
    def n_gen(self) -> int:
        return int(self.pg.shape[-1])

    @property
    def n_branch(self) -> int:
        return int(self.r.shape[-1])

    @property
    def n_region(self) -> int:
        return int(np.max(np.asarray(self.region))) + 1

    @property
    def reactive_ratio(self) -> np.ndarray:
        """[n_bus] qd/pd of the case (0 where pd <= 0): reactive load that follows a scaled
        active load, as the environment and the rating derivation scale it."""
        pd, qd = np.asarray(self.pd, float), np.asarray(self.qd, float)
        return np.where(pd > 0, qd / np.where(pd > 0, pd, 1.0), 0.0)

    @property
    def ref_bus(self) -> int:
        """Internal index of the (first) reference bus."""
        return int(np.flatnonzero(np.asarray(self.bus_type) == BusType.REF)[0])

    def astype(self, dtype) -> Grid:
        """The same grid with every floating-point array cast to `dtype`."""

        def cast(leaf):
            array = jnp.asarray(leaf)
            return array.astype(dtype) if jnp.issubdtype(array.dtype, jnp.floating) else array

        return jax.tree_util.tree_map(cast, self)

    def bus_index(self, bus_id: int) -> int:
        """Internal index of the bus the case numbers `bus_id`."""
        try:
            return self.bus_ids.index(int(bus_id))
        except ValueError:
            raise KeyError(f"grid {self.name!r} has no bus numbered {bus_id}") from None
