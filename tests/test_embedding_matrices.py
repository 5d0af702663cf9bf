"""Matrices as existing codes hand them over: any row scaling, boundary rows kept, AIJ, BAIJ with block
size 1, and shell operators (the PC then uses only the Pmat's diagonal and products)."""
import os
import sys

import numpy as np
import pytest

from pc_helpers import PETSc
from greenpc.driver import pushed_options

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts"))
from embed_systems import dmda_grid_points, dmda_poisson  # noqa: E402

M = 17
GREENPC = {"ksp_type": "fgmres", "ksp_rtol": "1e-6", "pc_type": "python",
           "pc_python_type": "greenpc.GreenPC", "greenpc_kernel": "poisson2d"}


class Shell:
    """A matrix-free operator: products and the diagonal of an assembled matrix, no rows."""

    def __init__(self, assembled):
        self.assembled = assembled

    def mult(self, mat, x, y):
        self.assembled.mult(x, y)

    def multTranspose(self, mat, x, y):
        self.assembled.multTranspose(x, y)

    def getDiagonal(self, mat, d):
        self.assembled.getDiagonal(d)


def shell(assembled):
    mat = PETSc.Mat().createPython(assembled.getSizes(), Shell(assembled), comm=assembled.getComm())
    mat.setUp()
    return mat


def solve(da, amat, pmat=None):
    """(iterations, the PC's summary, the -ksp_view text) for an ordinary KSP with greenpc."""
    ksp = PETSc.KSP().create()
    ksp.setOperators(amat, pmat or amat)
    ksp.setDM(da)
    ksp.setDMActive(PETSc.KSP.DMActive.ALL, False)
    with pushed_options(GREENPC):
        ksp.setFromOptions()
    b = amat.createVecLeft()  # homogeneous Dirichlet data: zero on the kept boundary rows
    points = dmda_grid_points(da)
    boundary = np.any((points == 0.0) | (points == 1.0), axis=1)
    b.setArray(np.where(boundary, 0.0, np.random.default_rng(1).uniform(-0.5, 0.5, len(points))))
    x = b.duplicate()
    ksp.solve(b, x)
    assert ksp.getConvergedReason() > 0, ksp.getConvergedReason()
    return ksp.getIterationNumber(), ksp.getPC().getPythonContext().summary(), view_text(ksp)


def view_text(ksp):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "view.txt")
        viewer = PETSc.Viewer().createASCII(path)
        ksp.view(viewer)
        viewer.destroy()
        with open(path) as handle:
            return handle.read()


@pytest.mark.parametrize("scale,boundary", [(1.0, 1.0), ((M - 1) ** 2, 1.0), (1e-3, 1e3),
                                            (1.0, 4.0)])
def test_row_scaling_and_kept_boundary_rows_do_not_matter(scale, boundary):
    """h^2-scaled rows (PETSc's tutorials), operator rows, odd factors: the same iterations."""
    reference, plain, _ = solve(*dmda_poisson(M))
    iterations, summary, _ = solve(*dmda_poisson(M, scale=scale, boundary=boundary))
    assert iterations == reference
    assert np.isclose(summary["scale"] * scale, plain["scale"], rtol=1e-10)
    assert summary["boundary_points"] == 4 * (M - 1) and summary["diagonal_fit"]


def test_baij_with_block_size_one_behaves_like_aij():
    da, aij = dmda_poisson(M)
    iterations, summary, _ = solve(da, aij)
    da, baij = dmda_poisson(M, mat_type="baij")
    assert baij.getType() == PETSc.Mat.Type.SEQBAIJ and baij.getBlockSize() == 1
    baij_iterations, baij_summary, _ = solve(da, baij)
    assert baij_iterations == iterations and baij_summary["diagonal_fit"]
    assert np.isclose(baij_summary["scale"], summary["scale"], rtol=1e-12)


def test_matrix_free_amat_with_an_assembled_pmat():
    da, A = dmda_poisson(M)
    iterations, _, _ = solve(da, A)
    shell_iterations, summary, _ = solve(da, shell(A), A)
    assert shell_iterations == iterations and summary["diagonal_fit"]


def test_shell_pmat_switches_the_diagonal_fit_off_and_says_so():
    da, A = dmda_poisson(M)
    operator = shell(A)
    iterations, summary, text = solve(da, operator, operator)
    assert not summary["diagonal_fit"] and iterations <= 8  # 6 with the fit
    assert "diagonal fit off (the Pmat, of type python, gives no rows" in text, text
