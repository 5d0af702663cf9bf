"""The paper's model problems (eq. 44): presets, grids, finite-difference stencils, anchor data.

PETSc-free; ``greenpc.problems.dmda`` builds the distributed PETSc objects from these pieces and
``greenpc.problems.operator`` (JAX) applies the continuous operator for the trainer.
"""
from .anchors import coarse_inverse
from .grid import FORMS, Grid
from .presets import PRESETS, Problem, get, names, shifted_laplacian
from .stencil import SCALINGS, assemble_coo, assemble_scipy, boundary_diagonal

__all__ = ["FORMS", "Grid", "PRESETS", "Problem", "SCALINGS", "assemble_coo", "assemble_scipy",
           "boundary_diagonal", "coarse_inverse", "get", "names", "shifted_laplacian"]
