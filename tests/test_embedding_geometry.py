"""Geometry from every source a PETSc code may give, the precedence between them, and the error.

In-process on one rank; tests/scripts/embed_geometry.py repeats the row-order checks on two ranks.
"""
import os
import sys

import numpy as np
import pytest

from pc_helpers import PETSc
import greenpc
from greenpc.driver import pushed_options
from greenpc.pc import geometry

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts"))
from embed_systems import (dmda_grid_points, dmda_poisson, plex_coordinate_vec,  # noqa: E402
                           plex_q1, without_dm)

GREENPC = {"ksp_type": "fgmres", "ksp_rtol": "1e-6", "pc_type": "python",
           "pc_python_type": "greenpc.GreenPC", "greenpc_kernel": "poisson2d"}
ITERATIONS = 8  # greenpc needs 7 on these 17 x 17 grids, FGMRES alone 47


def solve(A, dm=None, before_solve=None, options=None):
    """(ksp, geometry source, iterations): an ordinary KSP, greenpc chosen through options."""
    ksp = PETSc.KSP().create()
    ksp.setOperators(A)
    if dm is not None:
        ksp.setDM(dm)
        ksp.setDMActive(PETSc.KSP.DMActive.ALL, False)
    with pushed_options({**GREENPC, **(options or {})}):
        ksp.setFromOptions()
        if before_solve is not None:
            before_solve(ksp)
        b = A.createVecLeft()
        b.setArray(np.random.default_rng(0).uniform(-0.5, 0.5, b.getLocalSize()))
        x = b.duplicate()
        ksp.solve(b, x)
    assert ksp.getConvergedReason() > 0
    return ksp, ksp.getPC().getPythonContext().summary()["geometry"], ksp.getIterationNumber()


def coordinates_used(ksp):
    return ksp.getPC().getPythonContext().layout.local


def test_dmda_coordinates_that_the_code_set():
    da, A = dmda_poisson(17, coordinates=True)
    ksp, source, iterations = solve(A, da)
    assert source == "DMDA coordinates" and iterations <= ITERATIONS
    expected = da.getCoordinates().getArray(readonly=True).reshape(-1, 2)
    assert np.array_equal(coordinates_used(ksp), expected)


def test_dmda_without_coordinates_is_the_uniform_grid_on_the_unit_square():
    da, A = dmda_poisson(17)
    assert not da.getCoordinates()
    ksp, source, iterations = solve(A, da)
    assert source.startswith("DMDA grid (no coordinates set") and iterations <= ITERATIONS
    assert np.allclose(coordinates_used(ksp), dmda_grid_points(da), rtol=0, atol=1e-14)


def test_the_dm_the_pmat_was_created_from_when_the_ksp_has_none():
    da, A = dmda_poisson(17)
    _, source, iterations = solve(A)
    assert source.endswith("of the Pmat") and iterations <= ITERATIONS


def test_dmplex_vertex_coordinates_in_the_global_section_order():
    dm, A = plex_q1(12)
    ksp, source, iterations = solve(A, dm)
    assert source == "DMPlex vertex coordinates" and iterations <= 10
    used = coordinates_used(ksp)
    for axis in range(2):
        assert np.array_equal(used[:, axis], plex_coordinate_vec(dm, A, axis).getArray())


def test_dmplex_with_unknowns_off_the_vertices_is_refused():
    dm, A = plex_q1(4)
    section = PETSc.Section().create()
    section.setChart(*dm.getChart())
    for p in range(*dm.getChart()):
        section.setDof(p, 1)  # vertices, edges and cells: not a vertex layout
    section.setUp()
    dm.setLocalSection(section)
    B = dm.createMat()
    B.assemble()
    pc = PETSc.PC().create()
    pc.setOperators(B)
    pc.setDM(dm)
    with pytest.raises(geometry.GeometryError, match="one unknown per vertex"):
        geometry.local_coordinates(pc, B.getLocalSize()[0])


def test_pc_set_coordinates_as_gamg_users_do():
    da, A = dmda_poisson(17)
    plain = without_dm(A)
    points = dmda_grid_points(da)

    def give(ksp):  # after KSPSetFromOptions, as with -pc_type gamg from the options
        ksp.getPC().setCoordinates(points)

    ksp, source, iterations = solve(plain, before_solve=give)
    assert source.startswith("PC coordinates") and iterations <= ITERATIONS
    assert np.array_equal(coordinates_used(ksp), points)


def test_set_coordinates_holds_across_petsc4py_wrappers_and_pc_types():
    da, A = dmda_poisson(17)
    ksp = PETSc.KSP().create()
    ksp.setOperators(without_dm(A))
    greenpc.set_coordinates(ksp.getPC(), dmda_grid_points(da))  # a wrapper dropped at once, PC untyped
    with pushed_options(GREENPC):
        ksp.setFromOptions()
        ksp.setUp()
    assert ksp.getPC().getPythonContext().summary()["geometry"].startswith("PC coordinates")


@pytest.mark.parametrize("owner", ["pc", "pmat"])
def test_a_coordinates_vec_composed_by_the_caller(owner):
    da, A = dmda_poisson(17)
    plain = without_dm(A)
    vec = geometry.coordinates_vec(dmda_grid_points(da))

    def compose(ksp):
        target = ksp.getPC() if owner == "pc" else ksp.getPC().getOperators()[1]
        target.compose("greenpc_coordinates", vec)

    _, source, iterations = solve(plain, before_solve=compose)
    assert source == ("PC coordinates (PCSetCoordinates / composed Vec)" if owner == "pc"
                      else "coordinates Vec composed on the Pmat")
    assert iterations <= ITERATIONS


def test_precedence_pc_then_pmat_vec_then_pc_dm_then_pmat_dm():
    """Each source holds different points; removing the winner reveals the next one."""
    pmat_da, A = dmda_poisson(5)  # the Pmat's DM: no coordinates (implied grid)
    pc_da, _ = dmda_poisson(5, coordinates=True)
    pc_da.getCoordinates().scale(0.5)
    n = A.getLocalSize()[0]
    grid = dmda_grid_points(pmat_da)
    pc = PETSc.PC().create()
    pc.setOperators(A)
    pc.setDM(pc_da)
    pc.setType("python")
    pc.setPythonContext(greenpc.GreenPC())
    pc.setCoordinates(0.25 * grid)
    A.compose("greenpc_coordinates", geometry.coordinates_vec(0.125 * grid))
    expected = [(0.25, "PC coordinates"), (0.125, "coordinates Vec composed on the Pmat"),
                (0.5, "DMDA coordinates"), (1.0, "DMDA grid")]
    for factor, source in expected:
        local, found = geometry.local_coordinates(pc, n)
        assert found.startswith(source) and np.allclose(local, factor * grid)
        if source.startswith("PC"):
            pc.compose("greenpc_coordinates", None)
        elif source.startswith("coordinates Vec"):
            A.compose("greenpc_coordinates", None)
        elif source == "DMDA coordinates":
            pc.setDM(PETSc.DMShell().create())  # a DM that has no points: the Pmat's DM is next


def test_missing_geometry_error_names_every_source():
    _, A = dmda_poisson(9)
    ksp = PETSc.KSP().create()
    ksp.setOperators(without_dm(A))
    with pushed_options(GREENPC):
        ksp.setFromOptions()
        with pytest.raises(Exception) as raised:
            ksp.setUp()
    text = ""
    error = raised.value
    while error is not None:
        text += str(error)
        error = error.__cause__ or error.__context__
    for words in ("no geometry", "PCSetCoordinates", "greenpc.set_coordinates",
                  "composed on the PC or on the Pmat", "DMDA", "DMPlex", "DMCreateMatrix"):
        assert words in text, text


def test_row_order_on_two_ranks(mpirun):
    out = mpirun(["tests/scripts/embed_geometry.py"], ranks=2, timeout=120).stdout
    for check in ("dmda grid", "dmda coordinates", "pc coordinates", "dmplex order", "dmplex solve"):
        assert f"ok {check}" in out, out
