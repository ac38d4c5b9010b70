"""Which buses are energised: connected to the reference bus through in-service branches.

A bus cut off from the reference bus is de-energised, even where its island holds generators:
gridrl models no island frequency control, so such an island is lost (a blackout), as in
pandapower's own connectivity check. Buses of type ISOLATED are never energised.

Two ways are given. `energized_buses` works for any branch mask by propagating reachability
over the branch list (iterations = the depth of the graph seen from the reference bus).
`islands_after_outages` answers the same question in O(n·K) for a mask that differs from a
base topology by at most K branches, from a spanning tree of the base (`RefTree`): removing K
tree branches cuts the tree into at most K+1 pieces, and a piece stays energised iff a chain of
surviving branches joins it to the reference bus's piece.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from gridrl.cases.grid import BusType, Grid

Array = jnp.ndarray


def reference_bus(grid: Grid) -> Array:
    """Index of the first reference bus, as a traced integer (works with a Grid under jit)."""
    return jnp.argmax(jnp.asarray(grid.bus_type) == BusType.REF)


def usable_branches(grid: Grid, line_status: Array | None = None) -> Array:
    """bool [..., n_branch]: in service in the grid, in `line_status`, and between buses that are
    not of type ISOLATED."""
    isolated = jnp.asarray(grid.bus_type) == BusType.ISOLATED
    f_bus, t_bus = jnp.asarray(grid.f_bus), jnp.asarray(grid.t_bus)
    usable = jnp.asarray(grid.branch_status) & ~isolated[f_bus] & ~isolated[t_bus]
    if line_status is not None:
        usable = usable & jnp.asarray(line_status, dtype=bool)
    return usable


def energized_buses(grid: Grid, line_status: Array | None = None) -> Array:
    """bool [..., n_bus]: buses connected to the reference bus by usable branches.

    line_status [..., n_branch] (optional) is AND-ed with the grid's branch status; its leading
    dimensions are batch dimensions. Jit- and vmap-able.
    """
    usable = usable_branches(grid, line_status)
    return reachable(
        jnp.asarray(grid.f_bus), jnp.asarray(grid.t_bus), usable, reference_bus(grid), grid.n_bus
    )


def reachable(f_bus: Array, t_bus: Array, usable: Array, source: Array, n_bus: int) -> Array:
    """bool [..., n_bus]: buses reached from bus `source` over `usable` [..., n_branch] branches."""
    start = jnp.broadcast_to(jnp.arange(n_bus) == source, (*usable.shape[:-1], n_bus))

    def grow(state):
        reach, _ = state
        touched = usable & (reach[..., f_bus] | reach[..., t_bus])
        grown = reach.at[..., f_bus].max(touched).at[..., t_bus].max(touched)
        return grown, jnp.any(grown != reach)

    reach, _ = jax.lax.while_loop(lambda state: state[1], grow, (start, jnp.array(True)))
    return reach


@struct.dataclass
class RefTree:
    """A breadth-first spanning tree of the buses energised in a base topology, rooted at the
    reference bus. Buses the base leaves de-energised are in no subtree."""

    tree_child: Array  # int [n_branch]: the child bus of a tree branch, -1 for other branches
    depth: Array  # int [n_bus]: depth in the tree, -1 for buses not reached
    descendants: Array  # bool [n_bus, n_bus]: descendants[c, v] iff v is in the subtree of c


def ref_tree(f_bus: Array, t_bus: Array, usable: Array, root: Array, n_bus: int) -> RefTree:
    """The breadth-first tree over the `usable` [n_branch] branches (unbatched), each bus
    attached through the lowest-index branch that reaches it first."""
    n_branch = f_bus.shape[0]
    branch_ids = jnp.arange(n_branch)
    buses = jnp.arange(n_bus)

    def next_layer(state):
        layer, depth, parent, via, _ = state
        frontier = depth == layer
        forward = usable & frontier[f_bus] & (depth[t_bus] < 0)
        backward = usable & frontier[t_bus] & (depth[f_bus] < 0)
        best = (
            jnp.full(n_bus, n_branch)
            .at[t_bus]
            .min(jnp.where(forward, branch_ids, n_branch))
            .at[f_bus]
            .min(jnp.where(backward, branch_ids, n_branch))
        )
        new = best < n_branch
        edge = jnp.minimum(best, n_branch - 1)
        other_end = f_bus[edge] + t_bus[edge] - buses
        return (
            layer + 1,
            jnp.where(new, layer + 1, depth),
            jnp.where(new, other_end, parent),
            jnp.where(new, best, via),
            jnp.any(new),
        )

    start = (0, jnp.where(buses == root, 0, -1), buses, jnp.full(n_bus, n_branch), jnp.array(True))
    layers, depth, parent, via, _ = jax.lax.while_loop(lambda s: s[4], next_layer, start)
    tree_child = jnp.full(n_branch + 1, -1).at[via].set(buses)[:n_branch]

    def inherit(layer, ancestors):
        # a bus's ancestors are its parent's ancestors and itself; parents come a layer earlier
        at_layer = (depth == layer)[:, None]
        return jnp.where(at_layer, ancestors[parent] | jnp.eye(n_bus, dtype=bool), ancestors)

    ancestors = jax.lax.fori_loop(1, layers, inherit, jnp.eye(n_bus, dtype=bool))
    return RefTree(tree_child=tree_child, depth=depth, descendants=ancestors.T)


def islands_after_outages(
    tree: RefTree,
    base_energized: Array,
    f_bus: Array,
    t_bus: Array,
    usable: Array,
    outage_branch: Array,
    outage_valid: Array,
) -> tuple[Array, Array, Array]:
    """Energised buses after removing at most K branches from the base topology of `tree`.

    usable [..., n_branch] is the post-outage mask; outage_branch / outage_valid [..., K] list
    the removed base branches (padded slots invalid). Returns (energized [..., n_bus],
    cut_bus [..., K]: the child bus of each removed tree branch or -1, islanded [..., K]: whether
    the piece below that branch lost its connection to the reference bus).
    """
    k = outage_branch.shape[-1]
    cut_bus = jnp.where(outage_valid, tree.tree_child[outage_branch], -1)
    is_cut = cut_bus >= 0
    cut_safe = jnp.maximum(cut_bus, 0)
    # each bus belongs to the piece of the deepest removed tree branch above it (0: the root piece)
    in_subtree = tree.descendants[cut_safe] & is_cut[..., None]
    score = jnp.where(in_subtree, (tree.depth[cut_safe] + 1)[..., None], 0)
    piece = jnp.where(jnp.max(score, axis=-2) > 0, jnp.argmax(score, axis=-2) + 1, 0)
    pieces = jax.nn.one_hot(piece, k + 1, dtype=jnp.float32)
    from_piece = pieces[..., f_bus, :] * usable[..., None]
    joined = jnp.einsum("...ei,...ej->...ij", from_piece, pieces[..., t_bus, :]) > 0
    joined = joined | jnp.swapaxes(joined, -1, -2)
    reached = jnp.zeros(joined.shape[:-1], bool).at[..., 0].set(True)
    for _ in range(k):  # a chain of pieces is at most K links long
        reached = reached | jnp.any(joined & reached[..., None, :], axis=-1)
    energized = base_energized & jnp.take_along_axis(reached, piece, axis=-1)
    return energized, cut_bus, is_cut & ~reached[..., 1:]
