"""The near-resonant part of a Helmholtz Green's function: the Dirichlet eigenmodes of -lap near k2.

For -lap u - k2 u on [0, 1]^d with Dirichlet conditions (a constant medium),

    G(x, y; k2) = sum_m phi_m(x) phi_m(y) / (lambda_m - k2),  phi_m = prod_i sqrt(2) sin(m_i pi x_i),

with lambda_m = pi^2 |m|^2: G has a pole in k2 at every eigenvalue, so no smooth network of k2 can
learn it across a range (68 poles in [50, 1000] in 2D). The resonant part

    S(x, y; k2) = sum_m w(lambda_m - k2) phi_m(x) phi_m(y) / (lambda_m - k2),  w(t) = exp(-(t / width)^2)

holds every pole, and the remainder R = G - S = sum_m (1 - w(t_m)) / t_m phi_m(x) phi_m(y) is smooth in
k2 (it varies on the scale of ``width``). R solves

    -lap_x R - k2 R = delta(x - y) - sum_m w(t_m) phi_m(x) phi_m(y),

so the trainer learns R (with that source and anchors G_h - S_h) and the kernel adds S back in closed
form. On a grid of spacing h the finite-difference eigenvalues (4 / h^2) sum_i sin^2(m_i pi h / 2) take the
place of lambda_m: the sine vectors are exactly the discrete eigenvectors, so S_h then carries the poles
where the discrete operator has them.

The symmetric window leaves in R every mode far below k2, at its full weight 1 / (lambda_m - k2): at
k2 = 1000 in 2D some 30 modes, an oscillating, non-translation-invariant part that the network learns
poorly (95% of the anchors' far field missed). The window "below" keeps every mode under k2 in S,

    w(t) = 1 for t <= 0,  exp(-(t / width)^4) for t > 0,

so R holds only modes above k2, where 1 / (lambda_m - k2) is small and smooth: R is close to a
positive operator's Green's function, singular at the diagonal and decaying away from it. (1 - w) / t
is t^3 / width^4 near t = 0, so R stays twice continuously differentiable in k2 across every pole.

In a heterogeneous medium, -lap u - k2 n^2(x) u, the modes are those of the generalized problem
-lap phi = mu n^2 phi with int n^2 phi_m phi_l = delta_ml; then G = sum_m phi_m(x) phi_m(y) / (mu_m - k2),
and -lap_x S - k2 n^2 S = n^2(x) sum_m w phi_m(x) phi_m(y). They have no closed form: they are computed
by a Galerkin method in the sine basis (exact eigenfunctions of -lap), with the mass matrix of n^2 by
Gauss-Legendre quadrature; on a grid of spacing h the same basis with the finite-difference eigenvalues
and the grid's own mass matrix h^d sum_i n^2(x_i) s_k(x_i) s_l(x_i) gives the discrete operator's modes.
"""
import itertools
import math

import numpy as np

from .grid import distinct_points

#: presets whose operator is -lap - k2 n^2(x) (n^2 = 1 for the shifted ones)
RESONANT_PRESETS = ("shifted1d", "shifted2d", "helmholtz1d", "helmholtz2d")
#: modes with |lambda_m - k2| beyond this many widths for every k2 are left out (w < 1e-7; the window
#: "below" is under 1e-7 from 2 widths)
CUTOFF_WIDTHS = 4.0
#: shapes of the window w(lambda_m - k2)
WINDOWS = ("symmetric", "below")
#: the parameters of the Helmholtz presets that make the medium heterogeneous
MEDIUM_PARAMS = ("gauss", "layers")
#: the Galerkin sine basis reaches eigenvalues BASIS_FACTOR times the largest mode's, times max n^2,
#: with at least MIN_BASIS[dim] sines per direction: the layered medium's interface (width 0.05) needs
#: them (1D, contrast 0.5: the modes' pointwise equation residual is 3% with 23 sines, 2e-8 with 80)
BASIS_FACTOR = 4.0
MIN_BASIS = {1: 96, 2: 40, 3: 16}


def check_resonant(problem, params):
    """Raise unless ``problem`` is -lap - k2 n^2(x) (n^2 = 1 for the shifted presets)."""
    if problem.name not in RESONANT_PRESETS:
        raise ValueError(f"resonant-mode splitting is for -lap - k2 n^2 ({', '.join(RESONANT_PRESETS)}), "
                         f"not {problem.name}")


def medium_of(problem, params):
    """n^2(x, xp) of the problem's medium with ``params``, or None when it is constant (n^2 = 1)."""
    check_resonant(problem, params)
    if not any(params.get(k, 0.0) for k in MEDIUM_PARAMS):
        return None
    from .presets import helmholtz_profile

    fixed = {k: float(params.get(k, 0.0)) for k in MEDIUM_PARAMS}
    return lambda x, xp: helmholtz_profile(x, fixed, xp)


class ResonantModes:
    """The modes that can be near resonance for k2 in [low, high], in a constant or given medium.

    Parameters
    ----------
    dim : int
    width : float
        Width of the window w in units of k2.
    max_eigenvalue : float
        Largest eigenvalue kept (high + CUTOFF_WIDTHS * width covers k2 up to ``high``).
    medium : callable n2(x, xp) or None
        n^2 of a heterogeneous medium (``medium_of``); None: the sine modes of -lap.
    basis : int or None
        Sines per direction of the Galerkin basis (heterogeneous medium; default from BASIS_FACTOR).
    window : "symmetric" or "below"
        w(t) = exp(-(t / width)^2), or 1 for every mode below k2 (see the module's docstring).
    """

    def __init__(self, dim, width, max_eigenvalue, medium=None, basis=None, window="symmetric"):
        if not (width > 0 and math.isfinite(width)):
            raise ValueError(f"the window width must be positive, got {width!r}")
        if window not in WINDOWS:
            raise ValueError(f"the window is one of {', '.join(WINDOWS)}, got {window!r}")
        self.dim, self.width, self.max_eigenvalue = int(dim), float(width), float(max_eigenvalue)
        self.shape = window
        self.medium = medium
        if medium is None:
            top = int(math.floor(math.sqrt(max(self.max_eigenvalue, 0.0)) / math.pi))
            index = [m for m in itertools.product(range(1, top + 1), repeat=self.dim)
                     if math.pi ** 2 * sum(i * i for i in m) <= self.max_eigenvalue]
            self.index = np.array(index, dtype=np.float64).reshape(-1, self.dim)
            return
        nodes, _ = _quadrature(None, 64)
        grid = np.stack(np.meshgrid(*[nodes] * self.dim, indexing="ij"), -1)
        n2_max = float(np.max(medium(grid, np)))
        self.basis = int(basis or max(math.ceil(math.sqrt(BASIS_FACTOR * self.max_eigenvalue * n2_max)
                                                / math.pi) + 4, MIN_BASIS[self.dim]))
        mu, coefficients, size = self._galerkin(None)
        self.count = int(np.sum(mu <= self.max_eigenvalue))
        self._solved = {None: (mu[:self.count], coefficients[:, :self.count], size)}

    @classmethod
    def for_range(cls, dim, width, high, medium=None, window="symmetric"):
        return cls(dim, width, high + CUTOFF_WIDTHS * width, medium, window=window)

    def to_dict(self):
        out = {"width": self.width, "max_eigenvalue": self.max_eigenvalue}
        if self.shape != "symmetric":          # files written before windows existed stay as they were
            out["window"] = self.shape
        return out

    @classmethod
    def from_dict(cls, dim, record, medium=None):
        return cls(dim, record["width"], record["max_eigenvalue"], medium,
                   window=record.get("window", "symmetric"))

    def __len__(self):
        return len(self.index) if self.medium is None else self.count

    def _solve(self, spacing):
        """(mu, C, K) of this object's modes, continuous or on the grid of ``spacing`` (cached)."""
        if spacing not in self._solved:
            mu, coefficients, size = self._galerkin(spacing)
            self._solved[spacing] = (mu[:self.count], coefficients[:, :self.count], size)
        return self._solved[spacing]

    def _galerkin(self, spacing):
        """(mu, C, K), every eigenpair of the Galerkin problem diag(lambda) c = mu M c in K sines per
        direction (continuous, or on the grid of ``spacing``, where K is at most the grid's N: higher
        sines alias), ascending, with C^T M C = I."""
        from scipy.linalg import eigh

        nodes, weights = _quadrature(spacing, 2 * self.basis + 16)
        size = self.basis if spacing is None else min(self.basis, len(nodes))
        sines = _sine_basis(nodes, size, np)                                   # (Q, K)
        grid = np.stack(np.meshgrid(*[nodes] * self.dim, indexing="ij"), -1)
        weighted = self.medium(grid, np) * np.prod(np.meshgrid(*[weights] * self.dim, indexing="ij"),
                                                   axis=0)
        if self.dim == 1:
            mass = sines.T @ (weighted[:, None] * sines)
        else:
            partial = np.einsum("ab,ak,al->bkl", weighted, sines, sines, optimize=True)
            mass = np.einsum("bkl,bm,bn->kmln", partial, sines, sines, optimize=True)
            mass = mass.reshape(size ** 2, size ** 2)
        index = np.array(list(itertools.product(np.arange(1.0, size + 1), repeat=self.dim)))
        mu, coefficients = eigh(np.diag(_laplacian_eigenvalues(index, spacing, np)), mass)
        return mu, coefficients, size

    def eigenvalues(self, spacing=None, xp=np):
        """The modes' eigenvalues, or the finite-difference ones on a grid of ``spacing``."""
        if self.medium is not None:
            return xp.asarray(self._solve(spacing)[0])
        return _laplacian_eigenvalues(xp.asarray(self.index), spacing, xp)

    def _phi(self, x, xp, spacing=None):
        """phi_m(x) for every mode: (..., n_modes)."""
        if xp is np and x.ndim == 2:
            # the pairs of a block repeat a few points: evaluate each point once
            points, inverse = distinct_points(x)
            return self._phi_points(points, np, spacing)[inverse]
        return self._phi_points(x, xp, spacing)

    def _phi_points(self, x, xp, spacing):
        if self.medium is not None:
            return self._phi_medium(x, xp, spacing)
        if xp is not np:
            m = xp.asarray(self.index, dtype=x.dtype)
            return xp.prod(math.sqrt(2.0) * xp.sin(math.pi * x[..., None, :] * m), axis=-1)
        # products of the 1D sines, each direction's from one recurrence
        index = self.index.astype(np.intp) - 1
        sines = _sine_basis(x, int(index.max(initial=0)) + 1, np)               # (..., d, K)
        out = sines[..., 0, index[:, 0]]
        for i in range(1, self.dim):
            out = out * sines[..., i, index[:, i]]
        return out

    def _phi_medium(self, x, xp, spacing):
        _, coefficients, size = self._solve(spacing)
        sines = _sine_basis(x, size, xp)                                        # (..., d, K)
        basis = sines[..., 0, :]
        for i in range(1, self.dim):
            basis = (basis[..., :, None] * sines[..., i, None, :]).reshape(*x.shape[:-1], -1)
        return basis @ xp.asarray(coefficients, dtype=x.dtype)

    def window(self, k2, eigenvalues, xp=np):
        """w(lambda_m - k2): (..., n_modes) for k2 of shape (...)."""
        t = eigenvalues - xp.asarray(k2)[..., None]
        if self.shape == "below":
            return xp.exp(-(xp.maximum(t, 0.0) / self.width) ** 4)
        return xp.exp(-(t / self.width) ** 2)

    def part(self, x, y, k2, spacing=None, xp=np):
        """S(x_i, y_i; k2) of pairs (x, y) of shape (..., d), with the discrete modes if ``spacing``
        is given (k2 a scalar or one per pair)."""
        weight = self._weight(k2, spacing, xp)
        if xp is np and x.ndim == 2 and np.ndim(k2) == 0:
            return self._pairs(x, y, weight, spacing)
        return xp.sum(weight * self._phi(x, xp, spacing) * self._phi(y, xp, spacing), axis=-1)

    def _weight(self, k2, spacing, xp):
        """w(lambda_m - k2) / (lambda_m - k2) of every mode: S's coefficients."""
        lam = self.eigenvalues(spacing, xp)
        return self.window(k2, lam, xp) / (lam - xp.asarray(k2)[..., None])

    def _pairs(self, x, y, weight, spacing):
        """sum_m weight_m phi_m(x_i) phi_m(y_i) with numpy: the modes of each distinct point once."""
        px, ix = distinct_points(x)
        py, iy = distinct_points(y)
        a, b = self._factors(px, py, weight, spacing)
        if len(px) * len(py) <= 4 * len(x):
            # the pairs fill much of the block of their distinct points (a kernel matrix block)
            return (a @ b.T)[ix, iy]
        out = np.empty(len(x))
        for start in range(0, len(x), 1024):     # row-wise products, a cache-sized piece at a time
            rows = slice(start, start + 1024)
            out[rows] = np.einsum("pm,pm->p", a[ix[rows]], b[iy[rows]])
        return out

    def _factors(self, x, y, weight, spacing):
        """(a, b) with S(x_i, y_j) = (a b^T)_ij, only the modes whose weight is not negligible (below
        1e-17 of the largest: rounding)."""
        kept = np.abs(weight) > 1e-17 * np.abs(weight).max(initial=0.0)
        return (self._phi_points(x, np, spacing)[:, kept] * weight[kept],
                self._phi_points(y, np, spacing)[:, kept])

    def factors(self, x, y, k2, spacing=None):
        """(a, b), a (m, r) and b (n, r), with S(x_i, y_j; k2) = sum_k a_ik b_jk for points x (m, d) and
        y (n, d): S on any block is exactly of rank r (the modes that k2's window keeps)."""
        weight = self._weight(float(k2), spacing, np)
        return self._factors(np.asarray(x, np.float64), np.asarray(y, np.float64), weight, spacing)

    def source(self, x, y, k2, xp=np):
        """n^2(x) sum_m w(mu_m - k2) phi_m(x) phi_m(y): what -lap_x - k2 n^2 gives of S, away from
        delta."""
        w = self.window(k2, self.eigenvalues(None, xp), xp)
        total = xp.sum(w * self._phi(x, xp) * self._phi(y, xp), axis=-1)
        return total if self.medium is None else self.medium(x, xp) * total

    # the interface of a split-off part S of G (also problems.freespace.FreeSpace): the trainer's
    # network learns R = G - S and the kernel adds S back

    #: every phi_m vanishes on the boundary, so S does
    zero_on_boundary = True
    #: R = G - S keeps the delta
    removes_source = False

    def kernel(self, x, y, values, spacing=None, xp=np):
        """S at pairs (x, y) for the parameter values ``values`` (a mapping with k2)."""
        return self.part(x, y, values["k2"], spacing, xp)

    def kernel_factors(self, x, y, values, spacing=None):
        """``factors`` for the parameter values ``values``: S on points x by points y is a b^T."""
        return self.factors(x, y, values["k2"], spacing)

    def remainder_source(self, x, y, values, delta, xp=np):
        """The source of R = G - S, given the mollified delta N_eps(x, y)."""
        return delta - self.source(x, y, values["k2"], xp)

    def describe(self):
        return f"{len(self)} resonant modes (width {self.width:g})"


def _sine_basis(x, size, xp):
    """sqrt(2) sin(k pi x) for k = 1..size: (..., size). With numpy by the recurrence
    sin((k + 1) t) = 2 cos(t) sin(k t) - sin((k - 1) t): one sine and one cosine per point instead of
    ``size`` (the kernel evaluates S beside the network on every pair)."""
    if xp is not np:
        return math.sqrt(2.0) * xp.sin(math.pi * x[..., None] * xp.arange(1, size + 1, dtype=x.dtype))
    theta = math.pi * np.asarray(x, dtype=np.float64)
    rows = np.empty((size,) + theta.shape)        # one contiguous row per k, moved last at the end
    rows[0] = math.sqrt(2.0) * np.sin(theta)
    two_cos = 2.0 * np.cos(theta)
    if size > 1:
        rows[1] = two_cos * rows[0]
    for k in range(2, size):
        np.multiply(two_cos, rows[k - 1], out=rows[k])
        rows[k] -= rows[k - 2]
    return np.moveaxis(rows, 0, -1)


def _laplacian_eigenvalues(index, spacing, xp):
    """pi^2 |m|^2 of the sine modes m (n, d), or their finite-difference eigenvalues on a grid."""
    if spacing is None:
        return math.pi ** 2 * xp.sum(index * index, axis=1)
    return 4.0 / spacing ** 2 * xp.sum(xp.sin(index * (math.pi * spacing / 2.0)) ** 2, axis=1)


def _quadrature(spacing, points):
    """Nodes and weights on [0, 1]: Gauss-Legendre, or the interior points of a grid of ``spacing``."""
    if spacing is None:
        nodes, weights = np.polynomial.legendre.leggauss(points)
        return 0.5 * (nodes + 1.0), 0.5 * weights
    n = int(round(1.0 / spacing)) - 1
    return spacing * np.arange(1, n + 1), np.full(n, spacing)
