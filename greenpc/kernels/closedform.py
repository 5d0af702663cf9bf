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
    singular_diagonal = True

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


CLOSED_FORMS = {"poisson1d": Poisson1D, "shifted1d": Shifted1D, "poisson2d": Poisson2D}


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
