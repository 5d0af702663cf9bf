"""Coarse-grid anchor data (section 3.3): the dense inverse of a coarse operator, as kernel values.

(L_h^{-1})_ij / h^d approximates G(x_i, x_j) to O(h^2) (eq. 35); the trainer subsamples these values.
"""
import numpy as np

from .grid import Grid
from .stencil import assemble_scipy


def coarse_inverse(problem, N=32, params=None):
    """Points (n, d) of the interior coarse grid and the matrix (L_h^{-1})_ij / h^d (n, n)."""
    grid = Grid(problem.dim, N, "interior")
    operator = assemble_scipy(problem, grid, params).toarray()
    values = np.linalg.inv(operator) / grid.h ** grid.dim
    return grid.coordinates(grid.all_indices()), values
