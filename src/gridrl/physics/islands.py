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
    reference bus, with edge counts between its subtrees. Buses the base leaves de-energised are
    in no subtree."""

    tree_child: Array  # int [n_branch]: the child bus of a tree branch, -1 for other branches
    depth: Array  # int [n_bus]: depth in the tree, -1 for buses not reached
    descendants: Array  # bool [n_bus, n_bus]: descendants[c, v] iff v is in the subtree of c
    # base branch ends counted between vertex sets (each branch twice, once per direction):
    between: Array  # float [n_bus, n_bus]: from the subtree of c to the subtree of d
    leaving: Array  # float [n_bus]: from the subtree of c to any bus
    total: Array  # float []: all branch ends


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
    descendants = ancestors.T
    ends = usable.astype(jnp.float32)
    adjacency = (
        jnp.zeros((n_bus, n_bus), jnp.float32).at[f_bus, t_bus].add(ends).at[t_bus, f_bus].add(ends)
    )
    inside = descendants.astype(jnp.float32)
    return RefTree(
        tree_child=tree_child,
        depth=depth,
        descendants=descendants,
        between=inside @ adjacency @ inside.T,
        leaving=inside @ jnp.sum(adjacency, axis=1),
        total=jnp.sum(adjacency),
    )


def islands_after_outages(
    tree: RefTree,
    base_energized: Array,
    f_bus: Array,
    t_bus: Array,
    outage_branch: Array,
    outage_valid: Array,
) -> tuple[Array, Array]:
    """Energised buses after removing at most K branches from the base topology of `tree`.

    outage_branch / outage_valid [..., K] list the removed base branches (padded slots invalid).
    Returns (energized [..., n_bus], reconnect [..., K]). `reconnect` picks one removed branch
    per island: the cut branch above the island's shallowest piece. Putting these branches back
    joins every island to the energised grid by exactly one branch and without cycles (each
    island hangs from a strictly shallower piece), so a nodal matrix with them kept in is
    nonsingular, and with the islands' injections zeroed they carry no flow: the energised
    buses' solution is exact. This lets the DC solver skip grounding islands separately.

    Works on counts, never per branch: piece j is the subtree below cut j less the subtrees of
    the cuts nested directly inside it (piece 0: everything less the top-level subtrees), so
    branch counts between pieces follow from the precomputed counts between subtrees.
    """
    k = outage_branch.shape[-1]
    cut_bus = jnp.where(outage_valid, tree.tree_child[outage_branch], -1)
    is_cut = cut_bus >= 0
    cut = jnp.maximum(cut_bus, 0)  # index-safe; masked by is_cut

    def member(bus: Array) -> Array:
        """[..., K+1 sets, K points]: set 0 is all buses, set j the subtree below cut j."""
        inside = tree.descendants[cut[..., :, None], bus[..., None, :]] & is_cut[..., :, None]
        everywhere = jnp.ones_like(inside[..., :1, :])
        return jnp.concatenate([everywhere, inside], axis=-2).astype(jnp.float32)

    gone = outage_valid.astype(jnp.float32)[..., None, :]
    from_end = member(f_bus[outage_branch]) * gone
    to_end = member(t_bus[outage_branch]) * gone
    removed = _small_matmul(from_end, jnp.swapaxes(to_end, -1, -2))
    removed = removed + jnp.swapaxes(removed, -1, -2)
    real = is_cut.astype(jnp.float32)
    leaving = tree.leaving[cut] * real
    between = (
        tree.between[cut[..., :, None], cut[..., None, :]] * real[..., :, None] * real[..., None, :]
    )
    counts = (
        jnp.concatenate(
            [
                jnp.concatenate(
                    [
                        jnp.broadcast_to(tree.total, leaving.shape[:-1])[..., None, None],
                        leaving[..., None, :],
                    ],
                    -1,
                ),
                jnp.concatenate([leaving[..., :, None], between], -1),
            ],
            axis=-2,
        )
        - removed
    )
    # the cut directly above each cut (0: none): the deepest other cut whose subtree holds it
    holds = tree.descendants[cut[..., :, None], cut[..., None, :]] & is_cut[..., :, None]
    holds = holds & is_cut[..., None, :] & ~jnp.eye(k, dtype=bool)
    score = jnp.where(holds, (tree.depth[cut] + 1)[..., :, None], 0)
    parent = jnp.where(jnp.max(score, axis=-2) > 0, jnp.argmax(score, axis=-2) + 1, 0)
    nested = jax.nn.one_hot(parent, k + 1, dtype=jnp.float32) * real[..., :, None]  # [..., i, j]
    pieces = jnp.eye(k + 1, dtype=jnp.float32) - jnp.concatenate(
        [jnp.zeros_like(nested[..., :1, :]), nested], axis=-2
    ).swapaxes(-1, -2)
    pieces = pieces * jnp.concatenate([jnp.ones_like(real[..., :1]), real], -1)[..., :, None]
    links = _small_matmul(_small_matmul(pieces, counts), jnp.swapaxes(pieces, -1, -2))
    joined = (links > 0.5) & ~jnp.eye(k + 1, dtype=bool)
    reached = jnp.zeros(joined.shape[:-1], bool).at[..., 0].set(True)
    for _ in range(k):  # a chain of pieces is at most K links long
        reached = reached | jnp.any(joined & reached[..., None, :], axis=-1)
    islanded = is_cut & ~reached[..., 1:]
    # a dead piece is its subtree less its children's: weight each subtree by own − parent state
    dead = jnp.concatenate([jnp.zeros_like(islanded[..., :1]), islanded], -1).astype(jnp.float32)
    weight = dead[..., 1:] - jnp.take_along_axis(dead, parent, -1)
    # the cuts' subtree rows, gathered: K rows per sample, not a product with all n_bus rows
    subtrees = tree.descendants[cut].astype(jnp.float32)  # [..., K, n_bus]
    dead_bus = jnp.sum((weight * real)[..., :, None] * subtrees, axis=-2) > 0.5
    return base_energized & ~dead_bus, _shallowest_of_each_island(joined, islanded, tree.depth[cut])


def _shallowest_of_each_island(joined: Array, islanded: Array, depth: Array) -> Array:
    """bool [..., K]: the dead piece of least (depth, index) in each island of joined pieces."""
    k = islanded.shape[-1]
    big = jnp.iinfo(jnp.int32).max
    key = jnp.where(islanded, depth * k + jnp.arange(k), big)
    links = joined[..., 1:, 1:] & islanded[..., :, None] & islanded[..., None, :]
    least = key
    for _ in range(k - 1):  # an island of pieces is at most K-1 links wide
        least = jnp.minimum(least, jnp.min(jnp.where(links, least[..., None, :], big), axis=-1))
    return islanded & (key == least)


def _small_matmul(a: Array, b: Array) -> Array:
    """Batched product of tiny matrices as an unrolled sum of outer products: elementwise, so
    XLA fuses it (its CPU batched dot, and a broadcast-and-reduce it turns into one, are slow
    for a few rows per batch element)."""
    return sum(a[..., :, j, None] * b[..., None, j, :] for j in range(a.shape[-1]))
