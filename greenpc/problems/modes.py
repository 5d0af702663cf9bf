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
"""
import itertools
import math

import numpy as np

#: presets whose operator is -lap - k2 (in a constant medium for the Helmholtz ones)
RESONANT_PRESETS = ("shifted1d", "shifted2d", "helmholtz1d", "helmholtz2d")
#: modes with |lambda_m - k2| beyond this many widths for every k2 are left out (w < 1e-7)
CUTOFF_WIDTHS = 4.0


def check_resonant(problem, params):
    """Raise unless ``problem`` with fixed ``params`` is -lap - k2 (constant medium)."""
    if problem.name not in RESONANT_PRESETS:
        raise ValueError(f"resonant-mode splitting is for -lap - k2 ({', '.join(RESONANT_PRESETS)}), "
                         f"not {problem.name}")
    varying = {k: params.get(k, 0.0) for k in ("gauss", "layers") if params.get(k, 0.0) != 0.0}
    if varying:
        raise ValueError(f"resonant-mode splitting needs a constant medium (the modes are those of "
                         f"-lap), got {varying}")


class ResonantModes:
    """The modes of -lap on [0, 1]^d that can be near resonance for k2 in [low, high].

    Parameters
    ----------
    dim : int
    width : float
        Width of the window w in units of k2.
    max_eigenvalue : float
        Largest lambda_m kept (high + CUTOFF_WIDTHS * width covers k2 up to ``high``).
    """

    def __init__(self, dim, width, max_eigenvalue):
        if not (width > 0 and math.isfinite(width)):
            raise ValueError(f"the window width must be positive, got {width!r}")
        self.dim, self.width, self.max_eigenvalue = int(dim), float(width), float(max_eigenvalue)
        top = int(math.floor(math.sqrt(max(self.max_eigenvalue, 0.0)) / math.pi))
        index = [m for m in itertools.product(range(1, top + 1), repeat=self.dim)
                 if math.pi ** 2 * sum(i * i for i in m) <= self.max_eigenvalue]
        self.index = np.array(index, dtype=np.float64).reshape(-1, self.dim)

    @classmethod
    def for_range(cls, dim, width, high):
        return cls(dim, width, high + CUTOFF_WIDTHS * width)

    def to_dict(self):
        return {"width": self.width, "max_eigenvalue": self.max_eigenvalue}

    @classmethod
    def from_dict(cls, dim, record):
        return cls(dim, record["width"], record["max_eigenvalue"])

    def __len__(self):
        return len(self.index)

    def eigenvalues(self, spacing=None, xp=np):
        """lambda_m, or the finite-difference eigenvalues on a grid of ``spacing``."""
        m = xp.asarray(self.index)
        if spacing is None:
            return math.pi ** 2 * xp.sum(m * m, axis=1)
        return 4.0 / spacing ** 2 * xp.sum(xp.sin(m * (math.pi * spacing / 2.0)) ** 2, axis=1)

    def _phi(self, x, xp):
        """phi_m(x) for every mode: (..., n_modes)."""
        m = xp.asarray(self.index, dtype=x.dtype)
        return xp.prod(math.sqrt(2.0) * xp.sin(math.pi * x[..., None, :] * m), axis=-1)

    def window(self, k2, eigenvalues, xp=np):
        """w(lambda_m - k2): (..., n_modes) for k2 of shape (...)."""
        t = eigenvalues - xp.asarray(k2)[..., None]
        return xp.exp(-(t / self.width) ** 2)

    def part(self, x, y, k2, spacing=None, xp=np):
        """S(x_i, y_i; k2) of pairs (x, y) of shape (..., d), with the discrete eigenvalues if
        ``spacing`` is given (k2 a scalar or one per pair)."""
        lam = self.eigenvalues(spacing, xp)
        t = lam - xp.asarray(k2)[..., None]
        return xp.sum(self.window(k2, lam, xp) / t * self._phi(x, xp) * self._phi(y, xp), axis=-1)

    def source(self, x, y, k2, xp=np):
        """sum_m w(lambda_m - k2) phi_m(x) phi_m(y): what -lap_x - k2 gives of S, away from delta."""
        w = self.window(k2, self.eigenvalues(None, xp), xp)
        return xp.sum(w * self._phi(x, xp) * self._phi(y, xp), axis=-1)
