"""Solves with a low-rank update of a shared inverse (the Woodbury identity).

A topology change (a few branches out, a few islands grounded) changes a network matrix A by
U diag(c) Uᵀ with few columns. Given A⁻¹ once per grid, each updated system costs O(n·m) for
m columns instead of a fresh O(n³) factorisation. The form used,

    x = A⁻¹r − A⁻¹U (I + diag(c) Uᵀ A⁻¹ U)⁻¹ diag(c) Uᵀ A⁻¹ r,

never inverts c, so a zero coefficient is an unused (padded) column: its row of the small
"capacitance" matrix is a row of the identity and its correction is exactly zero.
"""

from __future__ import annotations

import jax.numpy as jnp

Array = jnp.ndarray


def woodbury_solve(inverse: Array, u: Array, coeff: Array, rhs: Array) -> Array:
    """Solve (A + U diag(coeff) Uᵀ) x = rhs given `inverse` = A⁻¹.

    inverse: [n, n], shared by the whole batch; u: [..., n, m]; coeff: [..., m], zero for unused
    columns; rhs: [..., n]. Leading dimensions broadcast together. Returns x: [..., n].
    """
    base = rhs @ inverse.T  # A⁻¹ r for every batch element at once
    inverse_u = jnp.einsum("ij,...jm->...im", inverse, u)
    gram = jnp.einsum("...im,...ik->...mk", u, inverse_u)
    u_base = jnp.einsum("...im,...i->...m", u, base)
    return woodbury_correct(base, inverse_u, gram, u_base, coeff, pivoting=True)


def woodbury_correct(
    base: Array,
    inverse_u: Array,
    gram: Array,
    u_base: Array,
    coeff: Array,
    *,
    pivoting: bool = True,
) -> Array:
    """The Woodbury solution from its products, for callers that form them cheaply.

    base = A⁻¹r [..., n]; inverse_u = A⁻¹U [..., n, m]; gram = UᵀA⁻¹U [..., m, m];
    u_base = UᵀA⁻¹r [..., m]; coeff [..., m]. With pivoting=False the m×m system is solved by
    unrolled elimination without pivoting (much faster for large batches of tiny systems); the
    caller must then order the columns so that every leading principal minor is nonzero.
    """
    m = coeff.shape[-1]
    capacitance = jnp.eye(m, dtype=gram.dtype) + coeff[..., :, None] * gram
    scaled = coeff * u_base
    if pivoting:
        z = jnp.linalg.solve(capacitance, scaled[..., None])[..., 0]
    else:
        z = solve_unpivoted(capacitance, scaled)
    return base - jnp.einsum("...im,...m->...i", inverse_u, z)


def solve_unpivoted(matrix: Array, rhs: Array) -> Array:
    """Solve matrix @ x = rhs for a batch of tiny systems ([..., m, m], [..., m]) by Gaussian
    elimination unrolled over the static size m, without pivoting."""
    m = matrix.shape[-1]
    rows = [matrix[..., i, :] for i in range(m)]
    values = [rhs[..., i] for i in range(m)]
    for k in range(m):
        for i in range(k + 1, m):
            factor = rows[i][..., k] / rows[k][..., k]
            rows[i] = rows[i] - factor[..., None] * rows[k]
            values[i] = values[i] - factor * values[k]
    solution = [None] * m
    for k in reversed(range(m)):
        known = sum(
            (rows[k][..., j] * solution[j] for j in range(k + 1, m)), jnp.zeros_like(rhs[..., 0])
        )
        solution[k] = (values[k] - known) / rows[k][..., k]
    return jnp.stack(solution, axis=-1)
