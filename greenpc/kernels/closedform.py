"""Closed-form Green's functions of -u'' - k2 u on [0, 1] and of -lap u on the unit square.

References for tests and for ``-greenpc_kernel NAME``: they go through the same code path as a learned
kernel, so a preconditioner built from them shows what the formats and the PC do with an exact kernel.
"""
import numpy as np

from .base import Kernel, KernelError

EULER_GAMMA = 0.5772156649015329


class Poisson1D(Kernel):
    """G(x, y) = min(x, y) (1 - max(x, y)) for -u'' = f, u(0) = u(1) = 0."""

    name = "poisson1d"
    dim = 1

    def _evaluate(self, x, y):
        x, y = x[:, 0], y[:, 0]
        return np.minimum(x, y) * (1.0 - np.maximum(x, y))


class Shifted1D(Kernel):
    """G for -u'' - k2 u = f on [0, 1] with Dirichlet conditions (k2 < 0 is a positive reaction).

    G(x, y) = sin(k x<) sin(k (1 - x>)) / (k sin k), k = sqrt(k2); the sinh form for k2 < 0.
    """

    name = "shifted1d"
    dim = 1

    def __init__(self, k2=50.0):
        super().__init__()
        self.k2 = float(k2)
        k = np.sqrt(abs(self.k2))
        if self.k2 > 0 and abs(np.sin(k)) < 1e-8:
            raise KernelError(f"shifted1d: k2={self.k2} is an eigenvalue (n pi)^2; G does not exist")

    @property
    def oscillatory(self):
        return self.k2 > 0

    def describe(self):
        return f"shifted1d (k2={self.k2:g})"

    def _evaluate(self, x, y):
        low, high = np.minimum(x[:, 0], y[:, 0]), np.maximum(x[:, 0], y[:, 0])
        k = np.sqrt(abs(self.k2))
        if self.k2 > 1e-12:
            return np.sin(k * low) * np.sin(k * (1.0 - high)) / (k * np.sin(k))
        if self.k2 < -1e-12:
            return np.sinh(k * low) * np.sinh(k * (1.0 - high)) / (k * np.sinh(k))
        return low * (1.0 - high)


def _theta1(u, q, terms=4):
    """Jacobi theta_1(u, q) = 2 sum_n (-1)^n q^((n + 1/2)^2) sin((2n + 1) u), u complex.

    With q = e^-pi and |Im u| <= pi / 2 four terms reach about 1e-12 relative accuracy; the sines come
    from powers of e^{iu}, one complex exponential per call.
    """
    w = np.exp(1j * u)
    w2 = w * w
    up, down = w, 1.0 / w
    total = np.zeros_like(w)
    for n in range(terms):
        total += (-1) ** n * q ** ((n + 0.5) ** 2) * (up - down)
        up, down = up * w2, down / w2
    return total / 1j


class Poisson2D(Kernel):
    """G for -lap u = f on the unit square with Dirichlet conditions, in closed form.

    The method of images on the lattice 2Z + 2iZ sums to Jacobi theta functions (nome e^-pi, so eight
    terms reach double precision):

        G(z, w) = -1/(2 pi) log | th1(pi(z-w)/2) th1(pi(z+w)/2) / (th1(pi(z-conj w)/2) th1(pi(z+conj w)/2)) |

    G is singular at z = w. The diagonal is regularized to the value of the 5-point finite-difference
    inverse on a grid of spacing ``spacing``: G(x, x + r e) with r = h exp(-gamma) / 2^(3/2), the
    lattice Green's function's constant; the PC sets ``spacing`` from the mesh.
    """

    name = "poisson2d"
    dim = 2
    uses_spacing = True

    def __init__(self, spacing=1.0 / 64):
        super().__init__()
        self.spacing = float(spacing)

    def describe(self):
        return f"poisson2d (theta-function closed form, diagonal regularized at h={self.spacing:.3g})"

    @property
    def diagonal_radius(self):
        return self.spacing * np.exp(-EULER_GAMMA) / 2.0 ** 1.5

    def _evaluate(self, x, y):
        z = x[:, 0] + 1j * x[:, 1]
        w = y[:, 0] + 1j * y[:, 1]
        same = np.abs(z - w) < 1e-14
        z = np.where(same, z + self.diagonal_radius, z)
        q = np.exp(-np.pi)
        half = np.pi / 2.0
        numerator = _theta1(half * (z - w), q) * _theta1(half * (z + w), q)
        denominator = _theta1(half * (z - np.conj(w)), q) * _theta1(half * (z + np.conj(w)), q)
        with np.errstate(divide="ignore", invalid="ignore"):
            values = -np.log(np.abs(numerator) / np.abs(denominator)) / (2.0 * np.pi)
        # on the boundary both numerator and denominator vanish: G = 0 there
        boundary = (np.abs(denominator) < 1e-300) | (np.minimum.reduce(
            [x[:, 0], x[:, 1], 1 - x[:, 0], 1 - x[:, 1]]) <= 0.0)
        return np.where(boundary, 0.0, values)


def _green1d(low, high, mu):
    """G of -u'' + mu u on [0, 1] (Dirichlet) at lower/upper points ``low``, ``high`` (shape (P,)),
    for each mu of ``mu`` (shape (M,)), as an (M, P) array; the sinh form is written with decaying
    exponentials only, so it stays finite for any mu > 0."""
    out = np.empty((len(mu), len(low)))
    pos, neg, zero = mu > 1e-12, mu < -1e-12, np.abs(mu) <= 1e-12
    if pos.any():
        s = np.sqrt(mu[pos])[:, None]
        d, t = high - low, high + low
        out[pos] = ((np.exp(-s * d) - np.exp(-s * (2.0 - t)) - np.exp(-s * t) + np.exp(-s * (2.0 - d)))
                    / (2.0 * s * -np.expm1(-2.0 * s)))
    if neg.any():
        s = np.sqrt(-mu[neg])[:, None]
        out[neg] = np.sin(s * low) * np.sin(s * (1.0 - high)) / (s * np.sin(s))
    if zero.any():
        out[zero] = low * (1.0 - high)
    return out


class Helmholtz2D(Poisson2D):
    """G for -lap u - k2 u = f on the unit square (Dirichlet), k2 constant, in closed form up to a
    smooth truncated series.

    With the sine modes 2 sin(m pi x1) sin(m pi y1) in the first coordinate, G is a sum of 1D Green's
    functions g(x2, y2; m^2 pi^2 - k2) in the second. Subtracting the same sum for k2 = 0 leaves the
    Laplacian's G (the theta-function closed form, singular part included) plus a series whose terms
    fall like k2 / m^3, so ``modes`` terms leave an error of order k2 / (pi^3 modes^2):

        G_k2(x, y) = G_0(x, y) + sum_m 2 sin(m pi x1) sin(m pi y1) [g(x2, y2; m^2 pi^2 - k2)
                                                                  - g(x2, y2; m^2 pi^2)]

    G does not exist when k2 is an eigenvalue pi^2 (m^2 + n^2) of the Laplacian.
    """

    name = "helmholtz2d"
    chunk = 1 << 12

    def __init__(self, k2=300.0, modes=128, spacing=1.0 / 64):
        super().__init__(spacing)
        self.k2 = float(k2)
        # every mode with m pi < k must be in the sum (the oscillating ones)
        self.modes = max(int(modes), int(np.ceil(2.0 * np.sqrt(max(self.k2, 0.0)) / np.pi)) + 1)
        m = np.arange(1, self.modes + 1, dtype=np.float64)
        self.mu0 = (m * np.pi) ** 2
        self.mu = self.mu0 - self.k2
        oscillating = self.mu < -1e-12
        if np.any(np.abs(np.sin(np.sqrt(-self.mu[oscillating]))) < 1e-8) or np.any(
                np.abs(self.mu) <= 1e-12):
            # sin(sqrt(k2 - m^2 pi^2)) = 0: k2 = pi^2 (m^2 + n^2) for some n
            raise KernelError(f"helmholtz2d: k2={self.k2} is an eigenvalue pi^2 (m^2 + n^2) of the "
                              "Laplacian; G does not exist")
        self.m = m

    @property
    def oscillatory(self):
        # at k2 = 500, N = 64, 4 x 4 Chebyshev points per cluster left 12% of the far blocks (eta 1.5)
        # with sampled errors over 1% of their largest entry, up to 9%: 200 iterations against ACA's 7
        return self.k2 > 0

    def describe(self):
        return (f"helmholtz2d (k2={self.k2:g}, theta-function closed form + {self.modes}-mode series, "
                f"diagonal regularized at h={self.spacing:.3g})")

    def _evaluate(self, x, y):
        base = super()._evaluate(x, y)
        # 2 sin(a) sin(b) = cos(a - b) - cos(a + b); cos(m pi t) for m = 1..M as powers of e^{i pi t}
        sines = (_powers(np.exp(1j * np.pi * (x[:, 0] - y[:, 0])), self.modes).real
                 - _powers(np.exp(1j * np.pi * (x[:, 0] + y[:, 0])), self.modes).real)
        low, high = np.minimum(x[:, 1], y[:, 1]), np.maximum(x[:, 1], y[:, 1])
        difference = _green1d(low, high, self.mu) - _laplace_green1d(low, high, self.modes)
        return base + np.einsum("mp,mp->p", sines, difference)


def _powers(base, count):
    """(count, P) array of base^m, m = 1..count, by repeated products (no transcendental calls)."""
    out = np.empty((count, len(base)), dtype=base.dtype)
    out[0] = base
    for m in range(1, count):
        np.multiply(out[m - 1], base, out=out[m])
    return out


def _laplace_green1d(low, high, count):
    """``_green1d`` for mu = (m pi)^2, m = 1..count: its exponentials e^{-m pi t} are powers."""
    d, t = high - low, high + low
    s = np.pi * np.arange(1, count + 1)[:, None]
    terms = (_powers(np.exp(-np.pi * d), count) - _powers(np.exp(-np.pi * (2.0 - t)), count)
             - _powers(np.exp(-np.pi * t), count) + _powers(np.exp(-np.pi * (2.0 - d)), count))
    return terms / (2.0 * s * -np.expm1(-2.0 * s))


CLOSED_FORMS = {"poisson1d": Poisson1D, "shifted1d": Shifted1D, "poisson2d": Poisson2D,
                "helmholtz2d": Helmholtz2D}


def closed_form(name, params=None):
    """The closed-form kernel ``name`` with parameters (e.g. {"k2": 50})."""
    if name not in CLOSED_FORMS:
        raise KernelError(f"unknown closed-form kernel {name!r}; choose one of {', '.join(CLOSED_FORMS)}")
    for key, value in (params or {}).items():
        if not np.isfinite(value):
            raise KernelError(f"closed-form kernel {name!r}: parameter {key}={value} is not a finite "
                              "number")
    try:
        return CLOSED_FORMS[name](**(params or {}))
    except TypeError:
        raise KernelError(f"closed-form kernel {name!r} does not take parameters {params}") from None
