"""The differential operator L_x of a preset applied to a scalar function, by forward-mode JAX.

    L u = -sum_ij a_ij d_i d_j u - sum_j (sum_i d_i a_ij) d_j u + b . grad u + c u

The trainer applies it to the network (x -> G(x, y)); the tests apply it to closed-form functions.
Second derivatives come from a jvp over a jvp (one nested pass per Hessian entry needed), which is
several times faster than a reverse-mode Hessian for the network sizes used here.
"""
import jax
import jax.numpy as jnp


def derivatives(u, x, pairs):
    """u(x), its gradient, and the Hessian entries ``pairs`` [(k, l), ...] at one point x (d,).

    Every diagonal pair (k, k) must be listed: the gradient is read off those passes.
    """
    d = x.shape[0]
    basis = jnp.eye(d, dtype=x.dtype)
    value, grad, hess = None, [None] * d, {}
    for k, l in pairs:
        inner = lambda z, k=k: jax.jvp(u, (z,), (basis[k],))
        (value, du_k), (du_l, d2u) = jax.jvp(inner, (x,), (basis[l],))
        grad[k], grad[l] = du_k, du_l
        hess[(k, l)] = hess[(l, k)] = d2u
    return value, jnp.stack(grad), hess


def hessian_pairs(problem):
    diagonal = [(k, k) for k in range(problem.dim)]
    if problem.diagonal_diffusion:
        return diagonal
    return diagonal + [(k, l) for k in range(problem.dim) for l in range(k + 1, problem.dim)]


def divergence_of_diffusion(problem, x, params):
    """(sum_i d_i a_ij)_j at one point, by forward-mode differentiation of the coefficient."""
    jac = jax.jacfwd(lambda z: problem.a(z, params, jnp))(x)  # [i, j, m] = d a_ij / d x_m
    return jnp.einsum("iji->j", jac)


def apply_operator(problem, u, x, params=None):
    """(L u)(x) for a scalar function ``u`` of one point ``x`` of shape (d,)."""
    params = params or {}
    value, grad, hess = derivatives(u, x, hessian_pairs(problem))
    a = problem.a(x, params, jnp)
    out = -sum(a[k, l] * hess[(k, l)] for k in range(problem.dim) for l in range(problem.dim)
               if (k, l) in hess)
    out = out - divergence_of_diffusion(problem, x, params) @ grad
    if problem.convection is not None:
        out = out + problem.b(x, params, jnp) @ grad
    if problem.reaction is not None:
        out = out + problem.c(x, params, jnp) * value
    return out


def coefficients(problem, x, params=None):
    """a(x), the divergence of a, b(x) and c(x) at one point (JAX)."""
    params = params or {}
    return (problem.a(x, params, jnp), divergence_of_diffusion(problem, x, params),
            problem.b(x, params, jnp), problem.c(x, params, jnp))


def apply_from_derivatives(problem, coeffs, value, grad, weighted_laplacian):
    """(L u)(x) from u, grad u and sum_ij a_ij d_i d_j u at x (the forward-Laplacian path)."""
    _, div_a, b, c = coeffs
    out = -weighted_laplacian + (b - div_a) @ grad
    return out + c * value if problem.reaction is not None else out
