"""Optimisation baselines (numpy + HiGHS, not jitted): DC optimal power flow and SCED. The cost
curves they optimise are gridrl.cases.costs' (re-exported here), the environment's too."""

from gridrl.cases.costs import GenCosts, cost_per_gen, gen_costs
from gridrl.opf.dcopf import (
    DcOpfProblem,
    DcOpfResult,
    DcOpfSolver,
    QuadraticProgram,
    build_dc_opf,
    dc_opf,
)
from gridrl.opf.network import DcNetwork, OpfInputError, dc_network
from gridrl.opf.sced import Sced, ScedResult

__all__ = [
    "DcNetwork",
    "DcOpfProblem",
    "DcOpfResult",
    "DcOpfSolver",
    "GenCosts",
    "OpfInputError",
    "QuadraticProgram",
    "Sced",
    "ScedResult",
    "build_dc_opf",
    "cost_per_gen",
    "dc_network",
    "dc_opf",
    "gen_costs",
]
