"""Pure-JAX grid physics: islands, DC power flow, PTDF, contingency analysis (LODF), low-rank
solves (and AC power flow)."""

from gridrl.physics.ac import ACModel, ACResult, ac_model, ac_power_flow
from gridrl.physics.contingency import lodf
from gridrl.physics.dc import DCModel, DCResult, dc_model, dc_power_flow
from gridrl.physics.islands import energized_buses
from gridrl.physics.lowrank import woodbury_solve
from gridrl.physics.sensitivity import ptdf

__all__ = [
    "ACModel",
    "ACResult",
    "DCModel",
    "DCResult",
    "ac_model",
    "ac_power_flow",
    "dc_model",
    "dc_power_flow",
    "energized_buses",
    "lodf",
    "ptdf",
    "woodbury_solve",
]
