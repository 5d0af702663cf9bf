"""A preset discretized on a PETSc DMDA: the distributed grid (with coordinates) and its MatMPIAIJ."""
import numpy as np
from petsc4py import PETSc

from ..petsc_mats import aij_from_coo

from .grid import Grid
from .stencil import assemble_coo


def create_dmda(grid: Grid, box_stencil=False, comm=None):
    """A DMDA over the grid's points, carrying their coordinates."""
    comm = comm or PETSc.COMM_WORLD
    stencil = PETSc.DMDA.StencilType.BOX if box_stencil else PETSc.DMDA.StencilType.STAR
    da = PETSc.DMDA().create(dim=grid.dim, sizes=grid.shape, dof=1, stencil_width=1,
                             stencil_type=stencil, comm=comm)
    da.setUp()
    low, high = grid.first_coordinate, 1.0 - grid.first_coordinate
    bounds = {}
    for axis, name in zip(range(grid.dim), "xyz"):
        bounds[f"{name}min"], bounds[f"{name}max"] = low, high
    da.setUniformCoordinates(**bounds)
    return da


def owned_indices(da):
    """Multi-indices (m, d) of the points this rank owns, in PETSc's order (first coordinate fastest)."""
    ranges = da.getRanges()
    axes = [np.arange(start, end) for start, end in ranges]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.transpose().ravel() for m in mesh], axis=-1) if len(axes) > 1 \
        else axes[0][:, None]


def assemble(problem, grid: Grid, da, params=None, scaling="operator"):
    """The operator's rows owned by this rank as a MatMPIAIJ in the DMDA's parallel numbering."""
    index = owned_indices(da)
    rows, cols, vals = assemble_coo(problem, grid, index, params, scaling)
    ao = da.getAO()
    rows = np.asarray(ao.app2petsc(rows.astype(PETSc.IntType)))
    cols = np.asarray(ao.app2petsc(cols.astype(PETSc.IntType)))
    n_local = index.shape[0]
    start = int(rows.min())  # owned points are contiguous in PETSc's numbering
    return aij_from_coo(rows - start, cols, vals, (n_local, n_local), (grid.size, grid.size),
                        da.getComm())


def build(problem, grid: Grid, params=None, scaling="operator", comm=None):
    """(da, A) for a preset on a grid."""
    da = create_dmda(grid, box_stencil=not problem.diagonal_diffusion, comm=comm)
    return da, assemble(problem, grid, da, params, scaling)


def random_rhs(grid, da, A, seed):
    """Entries uniform in [-0.5, 0.5] (the paper's protocol), identical on any number of ranks.

    Drawn over the whole grid in natural order; kept boundary rows get 0 (homogeneous Dirichlet data).
    """
    values = np.random.default_rng(seed).uniform(-0.5, 0.5, grid.size)
    index = owned_indices(da)
    local = values[grid.natural(index)]
    local[grid.is_boundary(index)] = 0.0
    b = A.createVecLeft()
    b.setArray(local)
    return b
