"""Coarse-grid anchor data (section 3.3): the dense inverse of a coarse operator, as kernel values.

(L_h^{-1})_ij / h^d approximates G(x_i, x_j) to O(h^2) (eq. 35); the trainer subsamples these values.
"""
import numpy as np
import scipy.sparse.linalg as spla

from .grid import Grid
from .stencil import assemble_scipy


def value_spacing(N, refine=1):
    """Spacing of the grid whose inverse gives ``coarse_inverse``'s values (N points, ``refine``)."""
    return 1.0 / (max(refine, 1) * (N + 1))


def coarse_inverse(problem, N=32, params=None, refine=1):
    """Points (n, d) of the interior coarse grid and the matrix (L_h^{-1})_ij / h^d (n, n).

    With ``refine`` R > 1 the values come from the grid R times finer (whose points include the coarse
    ones), restricted to the coarse points: one sparse factorization and n solves. First-order upwind
    schemes need it: on the coarse grid their numerical diffusion b h / 2 can exceed a itself.
    """
    coarse = Grid(problem.dim, N, "interior")
    points = coarse.coordinates(coarse.all_indices())
    if refine <= 1:
        operator = assemble_scipy(problem, coarse, params).toarray()
        return points, np.linalg.inv(operator) / coarse.h ** coarse.dim
    fine = Grid(problem.dim, refine * (N + 1) - 1, "interior")
    subset = fine.natural(refine * (coarse.all_indices() + 1) - 1)
    solver = spla.splu(assemble_scipy(problem, fine, params).tocsc())
    # column j of L^{-1} restricted to the coarse rows: G(x_i, x_j) ~ (L^{-1})_ij / h^d
    unit = np.zeros((fine.size, len(subset)))
    unit[subset, np.arange(len(subset))] = 1.0
    columns = solver.solve(unit)
    return points, columns[subset, :] / fine.h ** fine.dim
