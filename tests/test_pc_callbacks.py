"""GreenPC's lifecycle and options, in the style of petsc4py's test_pc_py.py (callbacks counted)."""
import numpy as np
import pytest

from pc_helpers import PETSc, problems
from greenpc.driver import pushed_options
from greenpc.problems import dmda

KERNEL = {"pc_type": "python", "pc_python_type": "greenpc.GreenPC",
          "greenpc_kernel": "shifted1d", "greenpc_param": "k2=20"}


def system(N=64, form="interior", prefix=""):
    problem = problems.get("shifted1d")
    grid = problems.Grid(1, N, form)
    da, A = dmda.build(problem, grid, {"k2": 20.0})
    ksp = PETSc.KSP().create()
    ksp.setOptionsPrefix(prefix)
    ksp.setOperators(A)
    ksp.setDM(da)
    ksp.setDMActive(PETSc.KSP.DMActive.ALL, False)
    ksp.setType("fgmres")
    ksp.setTolerances(rtol=1e-8)
    b = A.createVecLeft()
    b.setArray(np.random.default_rng(0).uniform(-0.5, 0.5, b.getLocalSize()))
    return ksp, A, b


def context(ksp):
    return ksp.getPC().getPythonContext()


def test_setup_once_across_two_solves_and_reuse_after_new_values():
    ksp, A, b = system()
    with pushed_options(KERNEL):
        ksp.setFromOptions()
    x = b.duplicate()
    ksp.solve(b, x)
    ksp.solve(b, x)
    ctx = context(ksp)
    assert ctx.calls["setUp"] == 1
    assert ctx.calls["apply"] >= 2
    evaluations = ctx.kernel.evaluations
    first_scale = ctx.fit.scale
    A.scale(3.0)  # same pattern and geometry, new values: only the fit is redone
    ksp.setOperators(A)
    ksp.solve(b, x)
    assert ctx.calls["setUp"] == 2
    assert ctx.kernel.evaluations == evaluations
    assert np.isclose(ctx.fit.scale, first_scale / 3.0, rtol=1e-8)
    assert ksp.getConvergedReason() > 0 and ksp.getIterationNumber() <= 3


def test_transpose_solve_reaches_apply_transpose():
    ksp, A, b = system()
    with pushed_options({**KERNEL, "ksp_type": "gmres"}):
        ksp.setFromOptions()
    ksp.setType("gmres")
    x = b.duplicate()
    ksp.solveTranspose(b, x)
    assert context(ksp).calls["applyTranspose"] > 0
    r = b.duplicate()
    A.multTranspose(x, r)
    r.aypx(-1.0, b)
    assert r.norm() <= 1e-6 * b.norm()


def test_options_prefix_is_honoured():
    ksp, A, b = system(prefix="inner_")
    options = {"inner_" + k: v for k, v in KERNEL.items()}
    options["inner_greenpc_format"] = "hmatrix"
    options["greenpc_format"] = "sparse"  # unprefixed: must not reach this PC
    with pushed_options(options):
        ksp.setFromOptions()
        x = b.duplicate()
        ksp.solve(b, x)
    assert context(ksp).summary()["format"] == "hmatrix"


@pytest.mark.parametrize("option,value,words", [
    ("greenpc_format", "blocky", "expected one of auto, dense, sparse, hmatrix"),
    ("greenpc_hmat_eta", "-1", "eta"),
    ("greenpc_sparse_nnz", "-3", ">= 0"),
    ("greenpc_decay_tol", "2", "(0, 1)"),
    ("greenpc_param", "k2", "NAME=VALUE"),
    ("greenpc_kernel", "poisson7d", "unknown closed-form kernel"),
])
def test_bad_option_values_are_refused_naming_the_option(option, value, words):
    ksp, A, b = system()
    with pushed_options({**KERNEL, option: value}):
        with pytest.raises(Exception) as raised:
            ksp.setFromOptions()
            ksp.setUp()
    text = "".join(str(e) for e in _chain(raised.value))
    assert words in text
    if option != "greenpc_kernel":
        assert f"-{option}" in text


def _chain(error):
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def test_missing_geometry_names_every_source():
    problem = problems.get("shifted1d")
    _, A = dmda.build(problem, problems.Grid(1, 16), {"k2": 20.0})
    ksp = PETSc.KSP().create()
    ksp.setOperators(A)
    with pushed_options(KERNEL):
        ksp.setFromOptions()
        with pytest.raises(Exception) as raised:
            ksp.setUp()
    text = "".join(str(e) for e in _chain(raised.value))
    assert "no geometry" in text and "PCSetCoordinates" in text and "DMDA" in text


def test_points_outside_the_domain_are_named():
    ksp, A, b = system(N=8)
    ksp.getDM().setUniformCoordinates(0.0, 2.0)
    with pushed_options(KERNEL):
        ksp.setFromOptions()
        with pytest.raises(Exception) as raised:
            ksp.setUp()
    text = "".join(str(e) for e in _chain(raised.value))
    assert "outside the domain" in text and "mesh point [1.142857]" in text  # the first one


def test_symmetric_option_gives_a_symmetric_preconditioner_for_cg(tmp_path):
    problem = problems.get("poisson2d")
    da, A = dmda.build(problem, problems.Grid(2, 12))
    ksp = PETSc.KSP().create()
    ksp.setOperators(A)
    ksp.setDM(da)
    ksp.setDMActive(PETSc.KSP.DMActive.ALL, False)
    with pushed_options({"pc_type": "python", "pc_python_type": "greenpc.GreenPC",
                         "greenpc_kernel": "poisson2d", "greenpc_symmetric": "1",
                         "greenpc_format": "dense", "ksp_type": "cg"}):
        ksp.setFromOptions()
    b = A.createVecLeft()
    b.setRandom()
    x = b.duplicate()
    ksp.solve(b, x)
    assert ksp.getConvergedReason() > 0
    M = context(ksp).op.mat
    dense = M.convert("dense").getDenseArray()
    assert np.allclose(dense, dense.T, rtol=1e-12, atol=1e-12 * abs(dense).max())


def test_ksp_view(tmp_path):
    ksp, A, b = system()
    with pushed_options({**KERNEL, "greenpc_format": "hmatrix"}):
        ksp.setFromOptions()
    x = b.duplicate()
    ksp.solve(b, x)
    path = str(tmp_path / "view.txt")
    viewer = PETSc.Viewer().createASCII(path)
    ksp.view(viewer)
    viewer.destroy()
    text = open(path).read()
    for words in ("kernel: shifted1d", "format: hmatrix", "scale s =", "kernel evaluations",
                  "stored entries", "preconditioned residual", "a posteriori check", "H-matrix:"):
        assert words in text, text


def test_log_view_shows_the_greenpc_events(mpirun):
    out = mpirun(["examples/solve.py", "-problem", "shifted1d", "-N", "200", "-nrhs", "1",
                  "-pc_type", "python", "-pc_python_type", "greenpc.GreenPC",
                  "-greenpc_kernel", "shifted1d", "-greenpc_param", "k2=50", "-log_view"],
                 ranks=2, timeout=120).stdout
    for event in ("GreenPCSetUp", "GreenPCKernelEval", "GreenPCAssembly", "GreenPCFit",
                  "GreenPCApply"):
        assert event in out
