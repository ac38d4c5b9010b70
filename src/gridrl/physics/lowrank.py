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
    weights = capacitance_solve(gram, u_base, coeff)
    return base - jnp.einsum("...im,...m->...i", inverse_u, weights)


def capacitance_solve(gram: Array, u_base: Array, coeff: Array, *, pivoting: bool = True) -> Array:
    """The weights w of the Woodbury correction x = A⁻¹r − A⁻¹U w, for callers that form the
    products cheaply themselves: gram = UᵀA⁻¹U [..., m, m], u_base = UᵀA⁻¹r [..., m].

    With pivoting=False the m×m system is solved by Gaussian elimination unrolled over m, without
    pivoting (much faster for large batches of tiny systems); the caller must then order the
    columns so that every leading principal minor of I + diag(coeff)·gram is nonzero.
    """
    m = coeff.shape[-1]
    capacitance = jnp.eye(m, dtype=gram.dtype) + coeff[..., :, None] * gram
    scaled = coeff * u_base
    if pivoting:
        return jnp.linalg.solve(capacitance, scaled[..., None])[..., 0]
    batch_last = solve_unpivoted(
        jnp.moveaxis(capacitance, (-2, -1), (0, 1)), jnp.moveaxis(scaled, -1, 0)
    )
    return jnp.moveaxis(batch_last, 0, -1)


def solve_unpivoted(matrix: Array, rhs: Array) -> Array:
    """Solve matrix @ x = rhs for a batch of tiny systems by Gaussian elimination unrolled over
    the static size m, without pivoting. Batch dimensions come LAST: matrix [m, m, ...],
    rhs [m, ...], x [m, ...], so that each entry is one contiguous array and every step is one
    elementwise pass over the batch (batch-first entries would be strided reads)."""
    m = matrix.shape[0]
    a = [[matrix[i, j] for j in range(m)] for i in range(m)]
    b = [rhs[i] for i in range(m)]
    for k in range(m):
        for i in range(k + 1, m):
            factor = a[i][k] / a[k][k]
            a[i] = [None] * (k + 1) + [a[i][j] - factor * a[k][j] for j in range(k + 1, m)]
            b[i] = b[i] - factor * b[k]
    x = [None] * m
    for k in reversed(range(m)):
        known = b[k]
        for j in range(k + 1, m):
            known = known - a[k][j] * x[j]
        x[k] = known / a[k][k]
    return jnp.stack(x)
