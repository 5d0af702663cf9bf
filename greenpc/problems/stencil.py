"""Finite-difference stencils of a preset on a Grid, as COO triplets in natural numbering.

Conservative central differences for diffusion (coefficients at the half-points; the cross terms of a
full tensor with the 9-point stencil), first-order upwind or central differences for convection, and
the reaction term on the diagonal. The operator form is the stencil divided by h^2, so that
L_h^{-1} ~ h^d G (eqs. 7-13); ``scaling="hd"`` multiplies every row by h^d, as eq. 7 does.
"""
import numpy as np
import scipy.sparse as sp

from .grid import Grid

SCALINGS = ("operator", "hd")


def row_scale(grid, scaling):
    if scaling == "operator":
        return 1.0
    if scaling == "hd":
        return grid.h ** grid.dim
    raise ValueError(f"unknown scaling {scaling!r}; choose one of {', '.join(SCALINGS)}")


def boundary_diagonal(grid, scaling="operator"):
    """Value on the diagonal of a kept boundary row: the unit Laplacian's diagonal, 2d / h^2."""
    return 2.0 * grid.dim / grid.h ** 2 * row_scale(grid, scaling)


def assemble_coo(problem, grid: Grid, index, params=None, scaling="operator"):
    """Rows of the discrete operator for the points ``index`` (integer multi-indices, shape (m, d)).

    Returns ``(rows, cols, values)`` in natural numbering; duplicates are to be summed.
    """
    if problem.dim != grid.dim:
        raise ValueError(f"problem {problem.name!r} is {problem.dim}D but the grid is {grid.dim}D")
    params = problem.resolve(params)
    index = np.asarray(index, dtype=np.int64).reshape(-1, grid.dim)
    d, h = grid.dim, grid.h
    x = grid.coordinates(index)
    unit = np.eye(d, dtype=np.int64)
    entries = {}

    def add(offset, values):
        key = tuple(offset)
        entries[key] = entries.get(key, 0.0) + values

    zero = np.zeros(d, dtype=np.int64)
    for k in range(d):
        a_plus = problem.a(x + 0.5 * h * unit[k], params)[:, k, k]
        a_minus = problem.a(x - 0.5 * h * unit[k], params)[:, k, k]
        add(zero, (a_plus + a_minus) / h ** 2)
        add(unit[k], -a_plus / h ** 2)
        add(-unit[k], -a_minus / h ** 2)
        if not problem.diagonal_diffusion:
            for l in range(d):
                if l == k:
                    continue
                a_fwd = problem.a(x + h * unit[k], params)[:, k, l] / (4.0 * h ** 2)
                a_bwd = problem.a(x - h * unit[k], params)[:, k, l] / (4.0 * h ** 2)
                add(unit[k] + unit[l], -a_fwd)
                add(unit[k] - unit[l], a_fwd)
                add(-unit[k] + unit[l], a_bwd)
                add(-unit[k] - unit[l], -a_bwd)
    if problem.convection is not None:
        b = problem.b(x, params)
        for k in range(d):
            if problem.convection_scheme == "upwind":
                forward, backward = np.maximum(b[:, k], 0.0), np.minimum(b[:, k], 0.0)
                add(zero, (forward - backward) / h)
                add(-unit[k], -forward / h)
                add(unit[k], backward / h)
            else:
                add(unit[k], b[:, k] / (2.0 * h))
                add(-unit[k], -b[:, k] / (2.0 * h))
    if problem.reaction is not None:
        add(zero, problem.c(x, params))

    scale = row_scale(grid, scaling)
    on_boundary = grid.is_boundary(index)
    rows, cols, vals = [], [], []
    for offset, values in entries.items():
        neighbour = index + np.asarray(offset)
        keep = grid.contains(neighbour) & ~on_boundary
        values = np.broadcast_to(values, keep.shape)
        rows.append(grid.natural(index[keep]))
        cols.append(grid.natural(neighbour[keep]))
        vals.append(scale * values[keep])
    if on_boundary.any():
        ids = grid.natural(index[on_boundary])
        rows.append(ids)
        cols.append(ids)
        vals.append(np.full(ids.shape, boundary_diagonal(grid, scaling)))
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)


def assemble_scipy(problem, grid: Grid, params=None, scaling="operator"):
    """The whole operator as a scipy CSR matrix (serial; coarse grids, references and tests)."""
    rows, cols, vals = assemble_coo(problem, grid, grid.all_indices(), params, scaling)
    return sp.csr_matrix((vals, (rows, cols)), shape=(grid.size, grid.size))
