"""The free-space part of a constant-coefficient diffusion operator's Green's function, in closed form.

For L u = -div(A grad u) in 2D with a constant symmetric positive definite A (the rotated Laplacian,
eq. 48), the fundamental solution is -log |A^(-1/2) (x - y)| / (2 pi sqrt(det A)). Mollified with the
operator's own Gaussian, N_A(x, y) = N_eps(A^(-1/2) (x - y)) / sqrt(det A) (the source N_eps of eq. 15 in
the coordinates z = A^(-1/2) x, where L is -lap_z; unit mass, like N_eps), it is

    S(x, y) = phi(|A^(-1/2) (x - y)|) / sqrt(det A),
    phi(rho) = -(2 log eps - gamma + Ein(rho^2 / eps^2)) / (4 pi),   L_x S = N_A(x, y),

with Ein(s) = int_0^s (1 - e^-t) / t dt = E1(s) + log s + gamma, an entire function: S is smooth, with
S(y, y) = (gamma / 2 - log eps) / (2 pi sqrt(det A)), and equal to the log kernel beyond a few eps.

On a grid of spacing h the discrete inverse is finite at the diagonal: there S takes the width
eps_h = kappa h for which S(y, y) is the discrete operator's (L_h^-1)_yy / h^2 less the smooth part,
kappa from one solve of the 9-point operator on a 127 x 127 grid (0.6-1.1 for the rotated Laplacian
with xi = 0.1, against eps = 0.01 otherwise: at N = 32 S(y, y) would be 0.56 too large, 30% of the
diagonal). Away from the source S does not depend on the width.

With a reaction term c(x) u (Helmholtz, -lap - k2 n^2) S is the principal part's: L_x S = N_A + c(x) S,
so R = G - S solves L_x R = -c(x) S, a source with S's log singularity (R behaves like r^2 log r
there, which the far-field branch resolves), and kappa is measured on the principal part's stencil.

Without one, the network learns R = G - S, which solves L_x R = 0 in the domain with R = -S on its boundary:
a smooth function with no source to learn (the rotated Laplacian's network otherwise has to resolve
N_eps, and under the relative residual it never did; under the paper's normalization by the source's
peak it did not satisfy the PDE away from the source). The anchors are G_h - S and the kernel adds S
back. The mollifier is N_A instead of the isotropic N_eps; they differ within a few eps of the source,
where the discrete inverse differs from either.
"""
from dataclasses import replace

import numpy as np

EULER_GAMMA = 0.5772156649015329
#: the grid and the ring (in cells) on which kappa is measured: the lattice's own corrections fall like
#: (h / r)^2, R's variation over the ring like r^2
KAPPA_N = 127
KAPPA_RING = (8.0, 16.0)
#: below this s, Ein(s) by its power series (16 terms: under 1e-15 of the sum for s <= 1)
SERIES_BELOW = 1.0
SERIES_TERMS = 16


def ein(s, xp=np):
    """Ein(s) = int_0^s (1 - exp(-t)) / t dt for s >= 0 (numpy or jax.numpy)."""
    small = xp.minimum(s, SERIES_BELOW)
    series, term = 0.0 * s, 0.0 * s - 1.0
    for k in range(1, SERIES_TERMS + 1):
        term = -term * small / k
        series = series + term / k
    large = xp.maximum(s, SERIES_BELOW)
    if xp is np:
        from scipy.special import exp1
    else:
        from jax.scipy.special import exp1
    return xp.where(s < SERIES_BELOW, series, exp1(large) + xp.log(large) + EULER_GAMMA)


def check_free_space(problem, params):
    """Raise unless ``problem`` is -div(A grad u) + c(x) u in 2D with A constant and no convection."""
    if problem.dim != 2 or problem.convection is not None:
        raise ValueError(f"the free-space split is for -div(A grad u) + c u in 2D with a constant A, "
                         f"not {problem.name}")
    points = np.random.default_rng(0).random((16, 2))
    a = problem.a(points, params)
    if not np.allclose(a, a[:1], rtol=1e-12, atol=0.0):
        raise ValueError(f"the free-space split needs a constant diffusion tensor; {problem.name}'s "
                         "varies in x")


def principal_part(problem):
    """The problem without its reaction term: -div(A grad u), whose free-space kernel S is."""
    return problem if problem.reaction is None else replace(problem, reaction=None,
                                                            name=f"{problem.name}-principal")


class FreeSpace:
    """S(x, y) above for one preset, mollified at width ``epsilon``."""

    #: S does not vanish on the boundary: the network's boundary values are -S there
    zero_on_boundary = False
    #: R = G - S solves L R = 0
    removes_source = True

    def __init__(self, problem, epsilon):
        self.problem = problem
        self.epsilon = float(epsilon)
        self._kappa = {}

    def to_dict(self):
        return {"epsilon": self.epsilon}

    @classmethod
    def from_dict(cls, problem, record):
        return cls(problem, record["epsilon"])

    def describe(self):
        return f"the free-space kernel in closed form (eps {self.epsilon:g})"

    def width(self, values, spacing=None):
        """The mollifier's width: eps, or kappa h on a grid of spacing h (``values`` concrete)."""
        if spacing is None:
            return self.epsilon
        tensor = self.problem.a(np.zeros((1, 2)), values)[0]
        key = tuple(np.round(tensor[np.triu_indices(2)], 12))
        if key not in self._kappa:
            self._kappa[key] = _kappa(principal_part(self.problem), values)
        return self._kappa[key] * spacing

    def kernel(self, x, y, values, spacing=None, xp=np):
        """S at the pairs (x, y) (shape (..., 2)) for the parameter values ``values``, with the grid's
        diagonal if ``spacing`` is given."""
        eps = self.width(values, spacing)
        a = self.problem.a(y, values, xp)
        det = a[..., 0, 0] * a[..., 1, 1] - a[..., 0, 1] * a[..., 1, 0]
        d = x - y
        # |A^(-1/2) d|^2 = d^T A^-1 d
        rho2 = (a[..., 1, 1] * d[..., 0] ** 2 - 2.0 * a[..., 0, 1] * d[..., 0] * d[..., 1]
                + a[..., 0, 0] * d[..., 1] ** 2) / det
        phi = -(2.0 * np.log(eps) - EULER_GAMMA + ein(rho2 / eps ** 2, xp)) / (4.0 * np.pi)
        return phi / xp.sqrt(det)

    def boundary_kernel(self, x, y, values, xp=np):
        """S on the boundary (the mollified kernel, no grid)."""
        return self.kernel(x, y, values, xp=xp)

    def remainder_source(self, x, y, values, delta, xp=np):
        """The source of R = G - S: delta - L S = -c(x) S(x, y), the mollifier being S's own (N_A).

        ``delta`` is taken to be N_A, so this part comes first in a ``split.Sum``."""
        if self.problem.reaction is None:
            return 0.0 * delta
        return -self.problem.c(x, values, xp) * self.kernel(x, y, values, xp=xp)


def _kappa(problem, values):
    """kappa = eps_h / h for the operator's stencil (see the module docstring)."""
    import scipy.sparse.linalg as spla

    from .grid import Grid
    from .stencil import assemble_scipy

    grid = Grid(2, KAPPA_N, "interior")
    points = grid.coordinates(grid.all_indices())
    centre = int(np.argmin(np.linalg.norm(points - 0.5, axis=1)))
    unit = np.zeros(grid.size)
    unit[centre] = 1.0
    column = spla.spsolve(assemble_scipy(problem, grid, values).tocsc(), unit) / grid.h ** 2
    r = points - points[centre]
    tensor = problem.a(points[:1], values)[0]
    factor = 1.0 / (2.0 * np.pi * np.sqrt(np.linalg.det(tensor)))    # of the log kernel
    rho = np.sqrt(np.einsum("ni,ij,nj->n", r, np.linalg.inv(tensor), r))
    distance = np.linalg.norm(r, axis=1) / grid.h
    ring = (distance >= KAPPA_RING[0]) & (distance <= KAPPA_RING[1])
    # the smooth part at the centre: the mean of G_h - log kernel over the ring
    smooth = np.mean(column[ring] + factor * np.log(rho[ring]))
    # S(y, y) = factor (gamma / 2 - log eps) = G_h(y, y) - smooth
    return float(np.exp(EULER_GAMMA / 2 - (column[centre] - smooth) / factor) / grid.h)
