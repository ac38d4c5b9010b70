"""Network data in: MATPOWER case files, pandapower networks and the built-in cases."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path

from gridrl.cases import ieee118
from gridrl.cases.costs import GenCosts, cost_per_gen, gen_costs
from gridrl.cases.grid import BusType, CostModel, GenType, Grid
from gridrl.cases.matpower import read_matpower
from gridrl.cases.pandapower import from_pandapower
from gridrl.cases.ppc import CaseError, from_ppc

DEFAULT_CASE = "ieee118"

# The plain cases pandapower ships (MATPOWER data as published, no ratings or regions added),
# by the name of their function in pandapower.networks.
PANDAPOWER_CASES = ("case14", "case30", "case57", "case118", "case300", "case1354pegase")


@functools.lru_cache(maxsize=len(PANDAPOWER_CASES))
def _pandapower_case(name: str) -> Grid:
    import pandapower.networks

    return ieee118.read_only(from_pandapower(getattr(pandapower.networks, name)(), name=name))


BUILT_IN: dict[str, Callable[[], Grid]] = {
    DEFAULT_CASE: ieee118.build,
    **{name: functools.partial(_pandapower_case, name) for name in PANDAPOWER_CASES},
}


def load(name_or_path: str | os.PathLike = DEFAULT_CASE) -> Grid:
    """A built-in case by name (see BUILT_IN; "ieee118" is the default) or a MATPOWER `.m` file
    by path. Built-in cases are built once per process and shared."""
    text = os.fspath(name_or_path)
    if text in BUILT_IN:
        return BUILT_IN[text]()
    if Path(text).suffix.lower() == ".m":
        return read_matpower(text)
    raise CaseError(
        f"unknown case {text!r}: give a MATPOWER .m file or one of {', '.join(BUILT_IN)}"
    )


__all__ = [
    "BUILT_IN",
    "DEFAULT_CASE",
    "BusType",
    "CaseError",
    "CostModel",
    "GenCosts",
    "GenType",
    "Grid",
    "cost_per_gen",
    "from_pandapower",
    "from_ppc",
    "gen_costs",
    "load",
    "read_matpower",
]
