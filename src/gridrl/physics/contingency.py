"""Contingency analysis: LODF (MATPOWER's makeLODF conventions), its columns after outages, the
islanding test of a single outage and the severity screen.

LODF[l, c]: the change of flow on branch l per MW that flowed on branch c before c went out,
LODF[l, c] = b_l·G[l, c] / (1 − b_c·G[c, c]) with G = A·X·Aᵀ of the topology: b_l·G[l, c] is the
flow on l per MW sent from c's from end to its to end (`transfer`), and the remainder
1 − b_c·G[c, c] the share of that MW taking a path parallel to c. The diagonal is −1 as in
MATPOWER.

Where MATPOWER divides by zero, gridrl defines: a branch whose outage islands part of the grid
(remainder 0) has LODF column 0 off the diagonal (the outcome then depends on the load and
generation lost with the island, which no distribution factor expresses: solve `dc_power_flow`
with the branch out instead). Branches out of service or dead have zero rows and columns
(diagonal −1 kept).

Which outages island buses: `islanding` searches the graph (exact; `lodf`, the severity screen
and SCED's confirmation); `near_islanding` compares the remainder with ISLANDING_REMAINDER (no
search: the environment's N-1 indicator every step, and SCED's candidates for the search).
`lodf_columns` holds the formula for every caller: `lodf` (JAX), the environment through
`lodf_after_outages` (JAX, float32) and SCED's preventive N-1 (numpy, float64).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from gridrl.cases.grid import Grid
from gridrl.physics.dc import DCModel, Outages, capacitance_weights, dc_model
from gridrl.physics.islands import reachable
from gridrl.physics.sensitivity import ptdf_of_topology, topology_of

Array = jnp.ndarray
AnyArray = np.ndarray | jax.Array  # numpy (SCED's float64) or JAX, traced arrays too

# A remainder below this: the outage islands buses. It is exactly 0 for a branch with no parallel
# path, and its round-off in float32 stays below ~4e-6 on ieee118 (also with 3 branches out by
# the compensation) while a real parallel path leaves at least 0.035; in float64 round-off is
# ~1e-12 against ≥ 2e-3 on the PGLib cases up to case1354_pegase. Larger float32 grids close the
# gap (case300 with 3 branches out: 2.5e-4 against 5.7e-3), hence SCED's graph confirmation.
ISLANDING_REMAINDER = 1e-4


def _namespace(array: AnyArray):
    """numpy for numpy arrays (SCED's float64), jax.numpy for JAX arrays, traced ones too."""
    return np if isinstance(array, np.ndarray) else jnp


def _remainder(transfer: AnyArray, cont: AnyArray) -> AnyArray:
    """[..., n1]: 1 − b_c·G[c, c] of each contingency c from `transfer` (see `lodf_columns`)."""
    return 1.0 - transfer[..., cont, np.arange(len(cont))]


def near_islanding(transfer: AnyArray, cont: AnyArray) -> AnyArray:
    """bool [..., n1]: the remainder of contingency c is below ISLANDING_REMAINDER (its outage
    islands buses, up to round-off: see the constant); arguments as in `lodf_columns`."""
    return _namespace(transfer).abs(_remainder(transfer, cont)) < ISLANDING_REMAINDER


def lodf_columns(transfer: AnyArray, cont: AnyArray, islanding: AnyArray) -> AnyArray:
    """LODF[:, c] [..., n_branch, n1] of the contingencies `cont` [n1] off the diagonal, from
    `transfer` [..., n_branch, n1] = b_l·G[l, c] (the flow on each branch per unit sent across
    c); the columns of the contingencies flagged in `islanding` bool [..., n1] are 0.

    numpy in, numpy out (SCED's float64); JAX arrays, traced ones too, give JAX arrays."""
    xp = _namespace(transfer)
    factors = transfer / xp.where(islanding, 1.0, _remainder(transfer, cont))[..., None, :]
    return xp.where(islanding[..., None, :], 0.0, factors)


@partial(jax.jit, static_argnames=("n_bus",))
def islanding(f_bus: Array, t_bus: Array, usable: Array, ref: Array, n_bus: int, cont: Array):
    """bool [..., n1]: whether taking contingency c of `cont` [n1] alone out of the topology
    `usable` [..., n_branch] de-energises some bus that it energises (a graph search)."""
    without = usable[..., None, :] & (jnp.arange(usable.shape[-1]) != cont[:, None])
    before = reachable(f_bus, t_bus, usable, ref, n_bus)
    after = reachable(f_bus, t_bus, without, ref, n_bus)
    return jnp.any(before[..., None, :] & ~after, axis=-1)


def lodf(grid: Grid, line_status: Array | None = None, *, model: DCModel | None = None) -> Array:
    """[..., n_branch, n_branch] LODF (see the module notes for islanding and dead branches).

    line_status [..., n_branch] (AND-ed with the grid's status) gives one matrix per sample,
    each from a dense factorisation of its own topology."""
    model = dc_model(grid) if model is None else model
    usable, energized = topology_of(grid, model, line_status)
    return _lodf(model, usable, energized, line_status is not None)[0]


@partial(jax.jit, static_argnums=(3,))
def _lodf(
    model: DCModel, usable: Array, energized: Array, own_inverse: bool
) -> tuple[Array, Array]:
    """The LODF and bool [..., n_branch]: the live branches whose outage islands buses."""
    factors = ptdf_of_topology(model, usable, energized, own_inverse)
    # transfer[l, k]: flow on l per MW sent from the from end to the to end of branch k
    transfer = factors[..., :, model.f_bus] - factors[..., :, model.t_bus]
    carries = usable & energized[..., model.f_bus]
    every = jnp.arange(model.n_branch)
    splits = carries & islanding(model.f_bus, model.t_bus, usable, model.ref, model.n_bus, every)
    columns = lodf_columns(transfer, every, splits)
    factors = jnp.where(carries[..., :, None] & carries[..., None, :], columns, 0.0)
    return jnp.where(jnp.eye(model.n_branch, dtype=bool), -1.0, factors), splits


def lodf_after_outages(model: DCModel, topology: Outages, cont: Array) -> tuple[Array, Array]:
    """`lodf_columns` [n_branch, n1] of the contingencies `cont` under `topology` (its branches
    out of the base; unbatched), and bool [n1]: c's outage would island buses (`near_islanding`).

    G' = A·X'·Aᵀ of the topology follows from the base G by the multiple-outage compensation
    (Güler, Gross and Liu 2007), G' = G − G[:, M]·W with W the Woodbury weights of G[M, cont]:
    the rank-|M| update the DC solver uses."""
    gram = model.branch_gram
    columns = gram[:, cont]
    if topology.branch.shape[-1]:  # branches out: compensate (none: the base gram's columns)
        at_outages = gram[topology.branch]  # [K, n_branch] (G is symmetric)
        weights = capacitance_weights(model, topology, at_outages[:, cont])  # [K, n1]
        # computed once: XLA would otherwise fuse the elimination into every element below
        weights = jax.lax.optimization_barrier(weights)
        # unrolled over K: elementwise, fused by XLA (a batched dot with K rows is slow on CPU)
        columns = columns - sum(
            at_outages[k][:, None] * weights[k][None, :] for k in range(weights.shape[0])
        )
    # materialised once: XLA would otherwise recompute them in every element that uses them
    # (with every branch in they are the same for a whole batch)
    transfer = model.susceptance[:, None] * columns
    splits = near_islanding(transfer, cont)
    return jax.lax.optimization_barrier((lodf_columns(transfer, cont, splits), splits))


def screen(grid: Grid, flows: np.ndarray, rating: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the branches in service whose outage alone islands no bus, those same branches ordered
    by the worst loading their outage causes on another branch), from the base topology's
    `flows` [n_branch] MW and `rating` [n_branch] MVA (numpy, once per grid)."""
    model = dc_model(grid)
    factors, splits = (np.asarray(a) for a in _lodf(model, model.usable, model.energized, False))
    candidates = np.flatnonzero(np.asarray(grid.branch_status, bool) & ~splits)
    post = flows[:, None] + factors * flows[None, :]
    np.fill_diagonal(post, 0.0)
    severity = np.max(np.abs(post) / rating[:, None], axis=0)
    return candidates, candidates[np.argsort(-severity[candidates], kind="stable")]
