"""The uniform grid on [0, 1]^d: N interior points per direction, h = 1 / (N + 1).

Two forms of the same discretization:

- ``interior``: only the N^d interior points are unknowns (Dirichlet values eliminated, eq. 8);
- ``boundary``: the (N + 2)^d points include the boundary, whose rows are scaled identity rows,
  as many existing PETSc codes keep them.

Points are numbered naturally, the first coordinate fastest (PETSc's DMDA natural ordering).
"""
from dataclasses import dataclass

import numpy as np

FORMS = ("interior", "boundary")


@dataclass(frozen=True)
class Grid:
    dim: int
    N: int
    form: str = "interior"

    def __post_init__(self):
        if self.form not in FORMS:
            raise ValueError(f"unknown grid form {self.form!r}; choose one of {', '.join(FORMS)}")
        if self.N < 1:
            raise ValueError(f"the grid needs N >= 1 interior points per direction, got N={self.N}")
        if self.dim not in (1, 2, 3):
            raise ValueError(f"grids are 1D, 2D or 3D, got dim={self.dim}")

    @property
    def h(self):
        return 1.0 / (self.N + 1)

    @property
    def points_per_dim(self):
        return self.N if self.form == "interior" else self.N + 2

    @property
    def size(self):
        return self.points_per_dim ** self.dim

    @property
    def shape(self):
        return (self.points_per_dim,) * self.dim

    @property
    def first_coordinate(self):
        return self.h if self.form == "interior" else 0.0

    def coordinates(self, index):
        """Coordinates of points given by integer multi-indices ``(..., d)``."""
        return (np.asarray(index) + (1 if self.form == "interior" else 0)) * self.h

    def natural(self, index):
        """Natural (first coordinate fastest) number of each multi-index."""
        index = np.asarray(index)
        strides = self.points_per_dim ** np.arange(self.dim)
        return index @ strides

    def multi_index(self, natural):
        natural = np.asarray(natural)
        n = self.points_per_dim
        return np.stack([(natural // n ** k) % n for k in range(self.dim)], axis=-1)

    def all_indices(self):
        return self.multi_index(np.arange(self.size))

    def is_boundary(self, index):
        """True for points on the boundary (never in the interior form)."""
        index = np.asarray(index)
        if self.form == "interior":
            return np.zeros(index.shape[:-1], dtype=bool)
        return np.any((index == 0) | (index == self.points_per_dim - 1), axis=-1)

    def contains(self, index):
        index = np.asarray(index)
        return np.all((index >= 0) & (index < self.points_per_dim), axis=-1)


def distinct_points(x):
    """(points, inverse): the distinct rows of x (n, d) and, for each row, its index among them
    (rows compared as bytes, which np.unique does far faster than with axis=0). The pairs of a kernel
    block repeat few points."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    rows = x.view(np.dtype((np.void, x.dtype.itemsize * x.shape[1]))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    return x[first], inverse.ravel()
