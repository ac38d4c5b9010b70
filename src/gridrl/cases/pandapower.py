"""Any pandapower network to a `Grid`, through pandapower's own conversion to its internal
MATPOWER-style case (so transformer models, shunts, switches and units are pandapower's)."""

from __future__ import annotations

import logging
import warnings

import numpy as np

from gridrl.cases.grid import Grid
from gridrl.cases.ppc import CaseError, from_ppc


def _internal_case(net) -> dict:
    """pandapower's internal case (in-service elements, pandapower's element order)."""
    from pandapower.converter.pypower.to_ppc import to_ppc

    logging.getLogger("pandapower").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return to_ppc(net, init="flat", calculate_voltage_angles=True)


def from_pandapower(net, *, name: str = "") -> Grid:
    """The Grid of a pandapower network, in pandapower's internal bus and branch order
    (lines, then two-winding transformers, then three-winding transformer branches)."""
    if not hasattr(net, "bus") or not hasattr(net, "line"):
        raise CaseError(f"from_pandapower expects a pandapower network, got {type(net).__name__}")
    if len(net.bus) == 0:
        raise CaseError("from_pandapower: the network has no buses")
    ppc = _internal_case(net)
    lookup = np.asarray(net._pd2ppc_lookups["bus"])
    pp_index = np.asarray(net.bus.index)
    internal = lookup[pp_index]
    bus_ids = np.full(len(ppc["bus"]), -1)
    for pp_bus, row in zip(pp_index[::-1], internal[::-1], strict=True):
        if 0 <= row < len(bus_ids):
            bus_ids[row] = pp_bus  # the lowest pandapower index among fused buses
    ppc = dict(ppc)
    ppc["bus"] = np.array(ppc["bus"], dtype=float)
    ppc["bus"][:, 0] = bus_ids
    ppc["gen"] = np.array(ppc["gen"], dtype=float)
    ppc["gen"][:, 0] = bus_ids[ppc["gen"][:, 0].astype(int)]
    mbase = ppc["gen"][:, 6]
    mbase[np.isnan(mbase)] = ppc["baseMVA"]  # pandapower leaves MBASE unset; gridrl ignores it
    ppc["branch"] = np.array(ppc["branch"], dtype=float)
    for column in (0, 1):
        ppc["branch"][:, column] = bus_ids[ppc["branch"][:, column].astype(int)]
    n_branch = len(ppc["branch"])
    branch_g = ppc.get("branch_g", np.zeros(n_branch))
    return from_ppc(
        ppc,
        name=name or str(getattr(net, "name", "") or "pandapower"),
        source=f"pandapower network {getattr(net, 'name', '') or ''}".strip(),
        branch_g=branch_g,
    )
