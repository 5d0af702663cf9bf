"""Named PDE presets of the model problem (eq. 44) on [0, 1]^d with Dirichlet conditions.

    L u = -div(a(x) grad u) + b(x) . grad u + c(x) u

Every coefficient is a function ``(x, p, xp)`` of points ``x`` (shape ``(..., d)``), a mapping ``p`` of
parameter values (floats, or arrays broadcastable against ``x[..., 0]``) and an array namespace ``xp``
(``numpy`` or ``jax.numpy``), so the same definition serves the finite-difference assembly and the
trainer, which differentiates it.
"""
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

import numpy as np


@dataclass(frozen=True)
class Problem:
    """One PDE of the family (eq. 44).

    Attributes
    ----------
    name, dim : preset name and spatial dimension d.
    diffusion : ``(x, p, xp) -> (..., d, d)`` tensor a(x).
    convection : ``(x, p, xp) -> (..., d)`` vector b(x), or None when b = 0.
    reaction : ``(x, p, xp) -> (...)`` scalar c(x), or None when c = 0.
    params : default parameter values (also the names the problem accepts).
    param_ranges : the closed interval each parameter may take.
    param_features : ``name -> (value, xp) -> list of features`` fed to a parametric network
        (e.g. theta as cos 2theta, sin 2theta).
    convection_scheme : "upwind" (first order, convection-dominated presets) or "central".
    diagonal_diffusion : a(x) is diagonal for every x (a 5-point stencil suffices in 2D).
    """

    name: str
    dim: int
    diffusion: Callable
    convection: Callable | None = None
    reaction: Callable | None = None
    params: Mapping[str, float] = field(default_factory=dict)
    param_ranges: Mapping[str, tuple] = field(default_factory=dict)
    param_features: Mapping[str, Callable] = field(default_factory=dict)
    convection_scheme: str = "central"
    diagonal_diffusion: bool = True
    description: str = ""

    def resolve(self, params=None):
        """Defaults overridden by ``params``; unknown names and values out of range are errors."""
        values = dict(self.params)
        for key, value in (params or {}).items():
            if key not in values:
                known = ", ".join(sorted(values)) or "none"
                raise ValueError(f"problem {self.name!r} has no parameter {key!r} (it takes: {known})")
            low, high = self.param_ranges.get(key, (-np.inf, np.inf))
            if not low <= float(value) <= high:
                raise ValueError(f"problem {self.name!r}: parameter {key}={value} is outside [{low}, {high}]")
            values[key] = float(value)
        return values

    def _values(self, params, xp):
        # traced (JAX) parameter values cannot be range-checked; numpy callers always are
        return self.resolve(params) if xp is np else {**self.params, **(params or {})}

    def a(self, x, params=None, xp=np):
        p = self._values(params, xp)
        return xp.broadcast_to(self.diffusion(x, p, xp), x.shape[:-1] + (self.dim, self.dim))

    def b(self, x, params=None, xp=np):
        p = self._values(params, xp)
        if self.convection is None:
            return xp.zeros(x.shape, dtype=x.dtype)
        return xp.broadcast_to(self.convection(x, p, xp), x.shape)

    def c(self, x, params=None, xp=np):
        p = self._values(params, xp)
        if self.reaction is None:
            return xp.zeros(x.shape[:-1], dtype=x.dtype)
        return xp.broadcast_to(self.reaction(x, p, xp), x.shape[:-1])

    def features(self, params, xp=np):
        """The network's parameter inputs for ``params`` (empty for a non-parametric problem)."""
        out = []
        for key in sorted(self.param_features):
            out.extend(self.param_features[key](params[key], xp))
        return out


def _identity(x, p, xp, scale=1.0):
    d = x.shape[-1]
    return scale * xp.broadcast_to(xp.eye(d, dtype=x.dtype), x.shape[:-1] + (d, d))


def _radial(x, xp):
    """1 + |x|^2, the variation used by the paper's 1D and 2D presets."""
    return 1.0 + xp.sum(x * x, axis=-1)


def _conv2d_a(x, p, xp):
    return _identity(x, p, xp) * (0.01 * _radial(x, xp))[..., None, None]


def _conv2d_b(x, p, xp):
    return xp.stack([1.0 + x[..., 1] ** 2, 1.0 + x[..., 0] ** 2], axis=-1)


def _rotated_tensor(x, p, xp):
    # eq. 48
    theta, xi = p["theta"], p["xi"]
    c, s = xp.cos(theta), xp.sin(theta)
    a11 = c * c + xi * s * s
    a22 = s * s + xi * c * c
    a12 = c * s * (1.0 - xi)
    row0 = xp.stack([a11, a12], axis=-1)
    row1 = xp.stack([a12, a22], axis=-1)
    tensor = xp.stack([row0, row1], axis=-2)
    return xp.broadcast_to(tensor, x.shape[:-1] + (2, 2))


def _double_angle(theta, xp):
    return [xp.cos(2.0 * theta), xp.sin(2.0 * theta)]


def _shift(x, p, xp):
    return -p["k2"] * xp.ones(x.shape[:-1], dtype=x.dtype)


def _unit(x, p, xp):
    return _identity(x, p, xp)


#: centre, width of the Gaussian inclusion and width of the layer interface of the Helmholtz profiles
INCLUSION_CENTRE, INCLUSION_WIDTH, LAYER_WIDTH = 0.5, 0.15, 0.05


def helmholtz_profile(x, p, xp):
    """n^2(x) = 1 + gauss exp(-|x - 1/2|^2 / (2 w^2)) + layers tanh((x_d - 1/2) / w_l).

    ``gauss`` is the amplitude of a Gaussian inclusion at the centre, ``layers`` the contrast of two
    layers meeting smoothly at x_d = 1/2 (x_d the last coordinate); both 0 give a constant medium.
    """
    r2 = xp.sum((x - INCLUSION_CENTRE) ** 2, axis=-1)
    inclusion = xp.exp(-r2 / (2.0 * INCLUSION_WIDTH ** 2))
    layer = xp.tanh((x[..., -1] - 0.5) / LAYER_WIDTH)
    return 1.0 + p["gauss"] * inclusion + p["layers"] * layer


def _helmholtz(x, p, xp):
    return -p["k2"] * helmholtz_profile(x, p, xp)


def _wavenumber(k2, xp):
    # k = sqrt(k2) sets the oscillation; k / 30 keeps the input O(1) over k2 in [50, 1000]
    return [xp.sqrt(k2) / 30.0]


def _helmholtz_problem(dim):
    return Problem(
        f"helmholtz{dim}d", dim, _unit, reaction=_helmholtz,
        params={"k2": 300.0, "gauss": 0.0, "layers": 0.0},
        # the profile stays positive: n^2 >= 1 - |layers| - max(0, -gauss) > 0
        param_ranges={"k2": (0.0, 1.0e5), "gauss": (-0.9, 4.0), "layers": (-0.9, 0.9)},
        param_features={"k2": _wavenumber},
        description=f"-lap u - k2 n^2(x) u = f in {dim}D (strongly indefinite for large k2; n^2 a "
                    "constant, a Gaussian inclusion (-gauss) or two layers (-layers))")


PRESETS = {
    "poisson1d": Problem("poisson1d", 1, _unit, description="-u'' = f"),
    "conv1d": Problem(
        "conv1d", 1, lambda x, p, xp: _identity(x, p, xp, 0.01),
        convection=lambda x, p, xp: 1.0 + x * x,
        convection_scheme="upwind",
        description="-0.01 u'' + (1 + x^2) u' = f (convection-dominated, section 5.2)"),
    "react1d": Problem(
        "react1d", 1, _unit,
        reaction=lambda x, p, xp: -50.0 * _radial(x, xp),
        description="-u'' - 50 (1 + x^2) u = f (indefinite, section 5.2)"),
    "shifted1d": Problem(
        "shifted1d", 1, _unit, reaction=_shift, params={"k2": 50.0},
        param_ranges={"k2": (0.0, 1.0e5)},
        description="-u'' - k2 u = f (eq. 29; indefinite once k2 > pi^2)"),
    "poisson2d": Problem("poisson2d", 2, _unit, description="-lap u = f"),
    "conv2d": Problem(
        "conv2d", 2, _conv2d_a, convection=_conv2d_b, convection_scheme="upwind",
        description="eqs. 45-46: a = 0.01 (1 + |x|^2) I, b = (1 + y^2, 1 + x^2)"),
    "react2d": Problem(
        "react2d", 2, _unit, reaction=lambda x, p, xp: -10.0 * _radial(x, xp),
        description="eq. 47: -lap u - 10 (1 + |x|^2) u = f (indefinite)"),
    "rotlap2d": Problem(
        "rotlap2d", 2, _rotated_tensor, params={"theta": 0.0, "xi": 0.1},
        param_ranges={"theta": (-np.inf, np.inf), "xi": (1e-6, 1.0)},
        param_features={"theta": _double_angle},
        diagonal_diffusion=False,
        description="eq. 48: rotated anisotropic Laplacian (9-point stencil)"),
    "shifted2d": Problem(
        "shifted2d", 2, _unit, reaction=_shift, params={"k2": 50.0},
        param_ranges={"k2": (0.0, 1.0e6)},
        description="-lap u - k2 u = f (indefinite once k2 > 2 pi^2)"),
    "helmholtz1d": _helmholtz_problem(1),
    "helmholtz2d": _helmholtz_problem(2),
}


def shifted_laplacian(problem):
    """The same problem with the sign of its reaction flipped (-lap + k2 n^2 for Helmholtz).

    Used as the preconditioning matrix of AMG for indefinite problems (the real shifted-Laplacian
    preconditioner); a problem without a reaction term is returned unchanged.
    """
    if problem.reaction is None:
        return problem
    reaction = problem.reaction
    return replace(problem, name=f"{problem.name}-shifted",
                   reaction=lambda x, p, xp: -reaction(x, p, xp),
                   description=f"shifted Laplacian of {problem.name}")


def get(name):
    """The preset called ``name``; a clear error lists the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown problem {name!r}; choose one of {', '.join(PRESETS)}") from None


def names():
    return list(PRESETS)
