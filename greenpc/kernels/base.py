"""What every kernel G(x, y) offers the preconditioner and the compressors.

A kernel is evaluated pairwise, ``kernel(x, y)`` for point arrays of shape (m, d) giving (m,) values in
float64, or on a block of rows and columns with ``kernel.block(X, Y)``. It counts its evaluations, knows
its dimension, the box it is valid on, and its parameters. Learned kernels (``greenpc.weights``) and the
closed-form references (``greenpc.kernels.closedform``) implement the same interface, so the whole PC
code path is the same for both.
"""
import numpy as np


#: default -greenpc_gate_tol: the DD experts a parametric model's gate weighs with at most this in all
#: are left out of its evaluation. On helmholtz1d and helmholtz1d-gauss (k2 = 50..1000) it keeps 2-5 of
#: the 9 experts and changes the kernel by at most 5e-6 relative (float32 rounding is 3e-8)
GATE_TOL = 1e-3


class KernelError(ValueError):
    """A kernel cannot serve the request (wrong dimension, point outside its domain, non-finite value)."""


class Kernel:
    """Base class: subclasses implement ``_evaluate(x, y) -> (m,)`` on validated arrays."""

    name = "kernel"
    dim = 1
    #: (low, high) corners of the box the kernel is valid on
    domain = (0.0, 1.0)
    #: pairs evaluated per call of _evaluate (bounds the memory of one evaluation)
    chunk = 1 << 18
    #: the values depend on the grid's spacing, which the PC sets as ``spacing`` (a singular diagonal
    #: regularized at the mesh scale, or poles placed where the discrete operator has them)
    uses_spacing = False
    #: G oscillates over the domain (a Helmholtz kernel with k2 > 0): an interpolant of fixed order
    #: under-resolves its far blocks, so -greenpc_hmat_compressor auto compresses it by ACA
    oscillatory = False

    def __init__(self):
        self.evaluations = 0

    def describe(self):
        """A one-line description for -ksp_view."""
        return self.name

    def innermost(self):
        """The kernel that does the evaluation (wrappers override this)."""
        return self

    def check_points(self, points, what="point"):
        """Points (m, d) of this kernel's dimension inside its domain; errors name the first bad one."""
        points = np.asarray(points, dtype=np.float64)
        if points.ndim == 1 and self.dim == 1:
            points = points[:, None]
        if points.ndim != 2 or points.shape[1] != self.dim:
            raise KernelError(f"{self.describe()} is {self.dim}D but got {what}s of shape {points.shape}")
        low, high = (np.broadcast_to(np.asarray(v, dtype=np.float64), (self.dim,)) for v in self.domain)
        tol = 1e-9 * np.maximum(1.0, high - low)
        outside = np.any((points < low - tol) | (points > high + tol), axis=1)
        if outside.any():
            i = int(np.flatnonzero(outside)[0])
            raise KernelError(f"{what} {np.array2string(points[i], precision=6)} is outside the domain "
                              f"[{', '.join(map(str, low))}] x [{', '.join(map(str, high))}] of "
                              f"{self.describe()}")
        return points

    def __call__(self, x, y):
        """G(x_i, y_i) for each pair, in float64."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, self.dim)
        y = np.asarray(y, dtype=np.float64).reshape(-1, self.dim)
        if x.shape != y.shape:
            raise KernelError(f"pairwise evaluation needs as many x as y, got {len(x)} and {len(y)}")
        out = np.empty(len(x))
        for start in range(0, len(x), self.chunk):
            stop = start + self.chunk
            out[start:stop] = self._checked(self._evaluate(x[start:stop], y[start:stop]),
                                            len(x[start:stop]))
        self.evaluations += len(x)
        bad = ~np.isfinite(out)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise KernelError(f"{self.describe()} is not finite at x={x[i].tolist()}, y={y[i].tolist()} "
                              f"({int(bad.sum())} of {len(out)} pairs)")
        return out

    def _checked(self, values, count):
        """``_evaluate``'s result as ``count`` real numbers (numpy would broadcast a scalar silently)."""
        values = np.asarray(values)
        if values.shape != (count,):
            raise KernelError(f"{self.describe()} returned shape {values.shape} for {count} pairs, "
                              f"expected ({count},)")
        if np.iscomplexobj(values):
            raise KernelError(f"{self.describe()} returned complex values; greenpc needs a real kernel")
        if not (np.issubdtype(values.dtype, np.floating) or np.issubdtype(values.dtype, np.integer)):
            raise KernelError(f"{self.describe()} returned values of type {values.dtype}, expected "
                              "real numbers")
        return values

    def block(self, rows, cols):
        """The (m, n) block G(rows_i, cols_j)."""
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, self.dim)
        cols = np.asarray(cols, dtype=np.float64).reshape(-1, self.dim)
        m, n = len(rows), len(cols)
        values = self(np.repeat(rows, n, axis=0), np.tile(cols, (m, 1)))
        return values.reshape(m, n)

    def _evaluate(self, x, y):
        raise NotImplementedError


class Wrapped(Kernel):
    """A kernel seen through another: same dimension, domain and description; own evaluation count."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.dim, self.domain = inner.dim, inner.domain
        self.chunk = inner.chunk

    def describe(self):
        return self.inner.describe()

    def innermost(self):
        kernel = self
        while isinstance(kernel, Wrapped):
            kernel = kernel.inner
        return kernel

    def layer(self, kind):
        """The first kernel of type ``kind`` down this chain (this one included), or None."""
        kernel = self
        while not isinstance(kernel, kind):
            if not isinstance(kernel, Wrapped):
                return None
            kernel = kernel.inner
        return kernel

    def _evaluate(self, x, y):
        return self.inner._evaluate(x, y)


class Symmetrized(Wrapped):
    """(G(x, y) + G(y, x)) / 2, for symmetric preconditioners (CG on self-adjoint problems)."""

    def describe(self):
        return f"symmetrized {self.inner.describe()}"

    def _evaluate(self, x, y):
        return 0.5 * (self.inner._evaluate(x, y) + self.inner._evaluate(y, x))
