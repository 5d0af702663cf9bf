"""Geometry row order on several ranks: DMDA (set and implied), PCSetCoordinates, DMPlex sections.

Run under mpiexec by tests/test_embedding_geometry.py; prints "ok <check>" for each check that holds.
"""
import os
import sys

import petsc4py

petsc4py.init(sys.argv)

import numpy as np  # noqa: E402
from mpi4py import MPI  # noqa: E402
from petsc4py import PETSc  # noqa: E402

from greenpc.driver import pushed_options  # noqa: E402
from greenpc.pc import geometry  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from embed_systems import (dmda_grid_points, dmda_poisson, plex_coordinate_vec,  # noqa: E402
                           plex_q1, without_dm)

GREENPC = {"ksp_type": "fgmres", "pc_type": "python", "pc_python_type": "greenpc.GreenPC",
           "greenpc_kernel": "poisson2d"}


def report(check, flag):
    """'ok CHECK' when the check holds on every rank."""
    held = PETSc.COMM_WORLD.tompi4py().allreduce(bool(flag), op=MPI.LAND)
    PETSc.Sys.Print(f"{'ok' if held else 'FAILED'} {check}")


def solved(A, dm=None, before_solve=None):
    ksp = PETSc.KSP().create()
    ksp.setOperators(A)
    if dm is not None:
        ksp.setDM(dm)
        ksp.setDMActive(PETSc.KSP.DMActive.ALL, False)
    with pushed_options(GREENPC):
        ksp.setFromOptions()
        if before_solve is not None:
            before_solve(ksp)
        b = A.createVecLeft()
        b.set(1.0)
        x = b.duplicate()
        ksp.solve(b, x)
    return ksp


def layout_of(ksp):
    return ksp.getPC().getPythonContext().layout.local


def main():
    assert PETSc.COMM_WORLD.getSize() > 1, "run under mpiexec -n 2 (or more)"
    da, A = dmda_poisson(13)
    ksp = solved(A, da)
    report("dmda grid", np.allclose(layout_of(ksp), dmda_grid_points(da), atol=1e-14)
           and ksp.getConvergedReason() > 0)

    da, A = dmda_poisson(13, coordinates=True)
    ksp = solved(A, da)
    report("dmda coordinates", np.array_equal(
        layout_of(ksp), da.getCoordinates().getArray(readonly=True).reshape(-1, 2)))

    points = dmda_grid_points(da)
    ksp = solved(without_dm(A), before_solve=lambda k: k.getPC().setCoordinates(points))
    report("pc coordinates", np.array_equal(layout_of(ksp), points)
           and ksp.getPC().getPythonContext().summary()["geometry"].startswith("PC coordinates")
           and ksp.getConvergedReason() > 0)

    dm, A = plex_q1(10)
    pc = PETSc.PC().create()
    pc.setOperators(A)
    pc.setDM(dm)
    local, _ = geometry.local_coordinates(pc, A.getLocalSize()[0])
    report("dmplex order", all(np.array_equal(local[:, axis], plex_coordinate_vec(dm, A, axis)
                                              .getArray()) for axis in range(2))
           and A.getLocalSize()[0] < A.getSize()[0])
    ksp = solved(A, dm)
    report("dmplex solve", ksp.getConvergedReason() > 0 and ksp.getIterationNumber() <= 10)
    PETSc.Sys.Print(f"dmplex iterations {ksp.getIterationNumber()}")


if __name__ == "__main__":
    main()
