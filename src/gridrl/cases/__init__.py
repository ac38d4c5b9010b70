"""Network data in: MATPOWER case files, pandapower networks and the built-in cases."""

from gridrl.cases.grid import BusType, CostModel, GenType, Grid
from gridrl.cases.pandapower import from_pandapower
from gridrl.cases.ppc import CaseError, from_ppc

__all__ = ["BusType", "CaseError", "CostModel", "GenType", "Grid", "from_pandapower", "from_ppc"]
