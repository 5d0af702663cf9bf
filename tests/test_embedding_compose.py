"""greenpc inside PETSc's composite preconditioners through options alone, and greenpc.create().

The prefixes are PETSc's: PCCOMPOSITE names its i-th PC ``<prefix>sub_<i>_``, PCKSP its inner KSP
``<prefix>ksp_``, PCFIELDSPLIT the KSP of split i ``<prefix>fieldsplit_<i>_`` (or the field's name).
"""
import os
import sys

import numpy as np
import pytest

from pc_helpers import PETSc
import greenpc
from greenpc.driver import pushed_options
from greenpc.kernels import closed_form

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts"))
from embed_systems import dmda_poisson  # noqa: E402

M = 17
PROTOCOL = {"ksp_type": "fgmres", "ksp_rtol": "1e-6"}


def greenpc_under(prefix):
    return {f"{prefix}pc_type": "python", f"{prefix}pc_python_type": "greenpc.GreenPC",
            f"{prefix}greenpc_kernel": "poisson2d"}


def solve(options, dof=1, ksp_prefix="", coupling=0.0, after_setup=None):
    """(ksp, iterations): an ordinary KSP on a DMDA Poisson system, all choices from ``options``.

    The options stay set through the solve: PCFIELDSPLIT builds its blocks (and reads their options)
    at set-up, not in setFromOptions.
    """
    da, A = dmda_poisson(M, dof=dof, coupling=coupling)
    ksp = PETSc.KSP().create()
    ksp.setOptionsPrefix(ksp_prefix)
    ksp.setOperators(A)
    ksp.setDM(da)
    ksp.setDMActive(PETSc.KSP.DMActive.ALL, False)
    with pushed_options({ksp_prefix + k: v for k, v in PROTOCOL.items()} | options):
        ksp.setFromOptions()
        b = A.createVecLeft()
        b.setArray(np.random.default_rng(2).uniform(-0.5, 0.5, b.getLocalSize()))
        x = b.duplicate()
        ksp.solve(b, x)
    assert ksp.getConvergedReason() > 0, ksp.getConvergedReason()
    return ksp, ksp.getIterationNumber()


def greenpc_alone(**options):
    return solve(greenpc_under("") | {f"greenpc_{k}": v for k, v in options.items()})[1]


@pytest.mark.parametrize("ksp_prefix", ["", "outer_"])
@pytest.mark.parametrize("smoother", ["sor", "jacobi"])
def test_composite_multiplicative_with_a_smoother(ksp_prefix, smoother):
    options = {f"{ksp_prefix}pc_type": "composite", f"{ksp_prefix}pc_composite_type": "multiplicative",
               f"{ksp_prefix}pc_composite_pcs": f"python,{smoother}",
               **greenpc_under(f"{ksp_prefix}sub_0_"),
               f"{ksp_prefix}sub_0_greenpc_format": "sparse",
               "greenpc_format": "hmatrix"}  # unprefixed: must not reach the sub-PC
    ksp, iterations = solve(options, ksp_prefix=ksp_prefix)
    first, second = (ksp.getPC().getCompositePC(i) for i in range(2))
    assert first.getOptionsPrefix() == f"{ksp_prefix}sub_0_"
    assert first.getType() == "python" and second.getType() == smoother
    summary = first.getPythonContext().summary()
    assert summary["format"] == "sparse" and summary["geometry"].startswith("DMDA")
    assert iterations < greenpc_alone(format="sparse")  # the smoother repairs the sparse cut-off


def test_greenpc_as_the_preconditioner_of_an_inner_ksp():
    options = {"pc_type": "ksp", "ksp_ksp_type": "richardson", "ksp_ksp_max_it": "2",
               **greenpc_under("ksp_")}
    ksp, iterations = solve(options)
    inner = ksp.getPC().getKSP()
    assert inner.getOptionsPrefix() == "ksp_" and inner.getType() == "richardson"
    assert inner.getPC().getPythonContext().summary()["geometry"].startswith("DMDA")
    assert iterations <= greenpc_alone()


@pytest.mark.parametrize("kind", ["additive", "multiplicative"])
def test_greenpc_in_each_block_of_a_fieldsplit(kind):
    options = {"pc_type": "fieldsplit", "pc_fieldsplit_type": kind}
    for split in ("0", "1"):
        options |= {f"fieldsplit_{split}_ksp_type": "preonly",
                    **greenpc_under(f"fieldsplit_{split}_")}
    ksp, iterations = solve(options, dof=2, coupling=0.01)
    blocks = ksp.getPC().getFieldSplitSubKSP()
    assert [block.getOptionsPrefix() for block in blocks] == ["fieldsplit_0_", "fieldsplit_1_"]
    for block in blocks:
        assert block.getPC().getType() == "python"
        summary = block.getPC().getPythonContext().summary()
        assert summary["points"] == M * M and summary["geometry"].startswith("DMDA")
    assert iterations <= 10


def test_fieldsplit_blocks_take_coordinates_given_between_setup_and_solve():
    """The blocks' sub-DMDAs have no coordinates; points given after KSPSetUp reach the blocks."""
    da, A = dmda_poisson(M, dof=2, coupling=0.01, coordinates=True)
    points = da.getCoordinates().getArray(readonly=True).reshape(-1, 2).copy()
    ksp = PETSc.KSP().create()
    ksp.setOperators(A)
    ksp.setDM(da)
    ksp.setDMActive(PETSc.KSP.DMActive.ALL, False)
    options = {"pc_type": "fieldsplit"}
    for split in ("0", "1"):
        options |= {f"fieldsplit_{split}_ksp_type": "preonly",
                    **greenpc_under(f"fieldsplit_{split}_")}
    with pushed_options(PROTOCOL | options):
        ksp.setFromOptions()
        ksp.setUp()
        for block in ksp.getPC().getFieldSplitSubKSP():
            greenpc.set_coordinates(block.getPC(), 0.5 + 0.5 * points)  # a shifted, shrunk domain
        b = A.createVecLeft()
        b.set(1.0)
        ksp.solve(b, b.duplicate())
    for block in ksp.getPC().getFieldSplitSubKSP():
        context = block.getPC().getPythonContext()
        assert context.summary()["geometry"].startswith("PC coordinates")
        assert np.array_equal(context.layout.local, 0.5 + 0.5 * points)


@pytest.fixture
def clean_options():
    """greenpc.create writes into PETSc's options database: take out what a test added."""
    before = set(PETSc.Options().getAll())
    yield
    database = PETSc.Options()
    for key in set(database.getAll()) - before:
        database.delValue(key)


@pytest.mark.parametrize("how", ["name", "object"])
def test_create_from_petsc4py(how, clean_options):
    da, A = dmda_poisson(M)
    ksp = PETSc.KSP().create()
    ksp.setOptionsPrefix("mine_")
    ksp.setType("fgmres")
    ksp.setOperators(A)
    ksp.setDM(da)
    ksp.setDMActive(PETSc.KSP.DMActive.ALL, False)
    kernel = "poisson2d" if how == "name" else closed_form("poisson2d")
    context = greenpc.create(ksp.getPC(), kernel=kernel, format="dense", diagonal_fit=True)
    assert PETSc.Options().getString("mine_greenpc_format") == "dense"
    b = A.createVecLeft()
    b.set(1.0)
    x = b.duplicate()
    ksp.solve(b, x)
    assert ksp.getPC().getType() == "python" and ksp.getPC().getPythonContext() is context
    assert ksp.getConvergedReason() > 0 and ksp.getIterationNumber() <= 8
    summary = context.summary()
    assert summary["format"] == "dense" and summary["kernel"].startswith("poisson2d")
