"""Pure-JAX grid physics: islands, DC power flow, PTDF/LODF, low-rank solves (and AC power flow)."""

from gridrl.physics.dc import DCModel, DCResult, dc_model, dc_power_flow
from gridrl.physics.islands import energized_buses
from gridrl.physics.lowrank import woodbury_solve
from gridrl.physics.sensitivity import lodf, ptdf

# AC power flow (gridrl.physics.ac): re-export ac_power_flow here when it lands.

__all__ = [
    "DCModel",
    "DCResult",
    "dc_model",
    "dc_power_flow",
    "energized_buses",
    "lodf",
    "ptdf",
    "woodbury_solve",
]
