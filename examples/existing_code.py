"""An existing petsc4py code, not written for greenpc: convection-diffusion on the unit square.

    -lap u + beta (1, 1/2) . grad u = f on [0, 1]^2, u = 0 on the boundary, exact u = sin(pi x) sin(pi y)

It builds its own DMDA with its own coordinates, assembles central differences in the natural scaling
(rows divided by h^2) with the boundary points kept as plain identity rows, never gives the KSP its DM,
and chooses the solver with ksp.setFromOptions() only. greenpc comes in from the command line:

    mpiexec -n 2 python examples/existing_code.py -ksp_type fgmres -ksp_converged_reason \\
        -pc_type python -pc_python_type greenpc.GreenPC -greenpc_kernel poisson2d

(greenpc finds the points through the DMDA the matrix was created from.) Options: -n (grid points per
direction, boundary included), -beta (convection strength).
"""
import sys

import petsc4py

petsc4py.init(sys.argv)

import numpy as np  # noqa: E402
from petsc4py import PETSc  # noqa: E402


def assemble(da, beta):
    """The operator on the DMDA's grid, rows in 1/h^2 scaling, Dirichlet rows as identity rows."""
    (mx, my) = da.getSizes()
    hx, hy = 1.0 / (mx - 1), 1.0 / (my - 1)
    bx, by = beta, 0.5 * beta
    A = da.createMat()
    row, col = PETSc.Mat.Stencil(), PETSc.Mat.Stencil()
    (xs, xe), (ys, ye) = da.getRanges()
    for j in range(ys, ye):
        for i in range(xs, xe):
            row.index = (i, j)
            if i in (0, mx - 1) or j in (0, my - 1):
                A.setValueStencil(row, row, 1.0)
                continue
            for di, dj, value in ((0, 0, 2.0 / hx**2 + 2.0 / hy**2),
                                  (-1, 0, -1.0 / hx**2 - bx / (2 * hx)),
                                  (1, 0, -1.0 / hx**2 + bx / (2 * hx)),
                                  (0, -1, -1.0 / hy**2 - by / (2 * hy)),
                                  (0, 1, -1.0 / hy**2 + by / (2 * hy))):
                col.index = (i + di, j + dj)
                A.setValueStencil(row, col, value)
    A.assemble()
    return A


def right_hand_side(da, beta):
    """(b, exact): f at the interior points from the DMDA's own coordinates, 0 on the boundary."""
    xy = da.getCoordinates().getArray(readonly=True).reshape(-1, 2)
    x, y = xy[:, 0], xy[:, 1]
    u = np.sin(np.pi * x) * np.sin(np.pi * y)
    ux = np.pi * np.cos(np.pi * x) * np.sin(np.pi * y)
    uy = np.pi * np.sin(np.pi * x) * np.cos(np.pi * y)
    f = 2 * np.pi**2 * u + beta * ux + 0.5 * beta * uy
    boundary = (np.isclose(x, 0) | np.isclose(x, 1) | np.isclose(y, 0) | np.isclose(y, 1))
    b, exact = da.createGlobalVec(), da.createGlobalVec()
    b.setArray(np.where(boundary, 0.0, f))
    exact.setArray(np.where(boundary, 0.0, u))
    return b, exact


def main():
    options = PETSc.Options()
    n = options.getInt("n", 49)
    beta = options.getReal("beta", 10.0)
    da = PETSc.DMDA().create(dim=2, sizes=(n, n), dof=1, stencil_width=1, comm=PETSc.COMM_WORLD,
                             setup=False)
    da.setFromOptions()
    da.setUp()
    da.setUniformCoordinates(0.0, 1.0, 0.0, 1.0)
    A = assemble(da, beta)
    b, exact = right_hand_side(da, beta)
    x = b.duplicate()

    ksp = PETSc.KSP().create(PETSc.COMM_WORLD)
    ksp.setOperators(A)
    ksp.setFromOptions()
    ksp.solve(b, x)

    x.axpy(-1.0, exact)
    mx, my = da.getSizes()
    PETSc.Sys.Print(f"grid {mx} x {my}, beta {beta:g}: {ksp.getIterationNumber()} iterations "
                    f"({ksp.getConvergedReason()}), max error {x.norm(PETSc.NormType.INFINITY):.3e}")
    for obj in (ksp, x, exact, b, A, da):
        obj.destroy()


if __name__ == "__main__":
    main()
