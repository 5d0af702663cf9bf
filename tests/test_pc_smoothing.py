"""-greenpc_smooth_its: SOR sweeps on the residual after the kernel product (greenpc/pc/smoothing.py).

It must be PETSc's multiplicative composite of greenpc and PCSOR, on one rank and on two (local sweeps),
and on a symmetric positive definite operator it can only shrink the error in the energy norm.
"""
import re

import numpy as np
import pytest

from greenpc.driver import pushed_options
from greenpc.problems import dmda
from pc_helpers import GREENPC, PETSc, problems


@pytest.mark.parametrize("ranks,its,omega", [(1, 2, 1.0), (1, 1, 1.4), (2, 2, 1.0)])
def test_smoothing_is_the_multiplicative_composite_with_sor(mpirun, ranks, its, omega):
    out = mpirun(["tests/scripts/smoothing_compare.py", str(its), str(omega)], ranks=ranks).stdout
    difference = float(re.search(r"relative difference (\S+)", out).group(1))
    assert difference <= 1e-12, out


def poisson_pc(options):
    """(A, pc) for poisson2d on a 20 x 20 grid with the closed-form kernel, deliberately mis-scaled so
    that the kernel product leaves a large error for the sweeps to act on."""
    da, A = dmda.build(problems.get("poisson2d"), problems.Grid(2, 20))
    ksp = PETSc.KSP().create()
    ksp.setOperators(A)
    ksp.setDM(da)
    ksp.setDMActive(PETSc.KSP.DMActive.ALL, False)
    with pushed_options({**GREENPC, "greenpc_kernel": "poisson2d", "greenpc_format": "dense",
                         "greenpc_scale": "0.6", **options}):
        ksp.setFromOptions()
        ksp.setUp()
    return A, ksp.getPC(), ksp


def error_after(A, pc, e):
    """e - P A e: the error left by one application of the PC to the residual of error e."""
    r, y = A.createVecLeft(), A.createVecRight()
    A.mult(e, r)
    pc.apply(r, y)
    out = e.copy()
    out.axpy(-1.0, y)
    return out


def energy(A, v):
    w = A.createVecLeft()
    A.mult(v, w)
    return np.sqrt(v.dot(w))


def test_sweeps_shrink_the_error_in_the_energy_norm(tmp_path):
    A, plain, _ = poisson_pc({})
    _, smoothed, ksp = poisson_pc({"greenpc_smooth_its": "2"})
    for seed in range(4):
        e = A.createVecRight()
        e.setArray(np.random.default_rng(seed).uniform(-1.0, 1.0, e.getLocalSize()))
        before, after = energy(A, error_after(A, plain, e)), energy(A, error_after(A, smoothed, e))
        # symmetric Gauss-Seidel contracts in the A-norm: (I - S A)(I - M A) e is no larger
        assert after < 0.9 * before, (seed, before, after)
    path = str(tmp_path / "view.txt")
    viewer = PETSc.Viewer.ASCII(path)
    ksp.view(viewer)
    viewer.destroy()
    with open(path) as f:
        assert "smoothing: 2 symmetric SOR sweeps (omega 1" in f.read()


def test_transpose_solves_are_refused_naming_the_option():
    A, pc, _ = poisson_pc({"greenpc_smooth_its": "1"})
    b, y = A.createVecLeft(), A.createVecRight()
    b.set(1.0)
    with pytest.raises(PETSc.Error) as raised:
        pc.applyTranspose(b, y)
    err = raised.value
    while err is not None and "-greenpc_smooth_its" not in str(err):
        err = err.__cause__ or err.__context__
    assert err is not None and "-greenpc_smooth_its 1" in str(err)


def test_changing_only_the_sweeps_does_not_rebuild_the_kernel_matrix():
    A, pc, ksp = poisson_pc({})
    context = pc.getPythonContext()
    evaluations = context.kernel.evaluations
    b, plain, smoothed = A.createVecLeft(), A.createVecRight(), A.createVecRight()
    b.setArray(np.random.default_rng(5).uniform(-0.5, 0.5, b.getLocalSize()))
    pc.apply(b, plain)
    with pushed_options({"greenpc_kernel": "poisson2d", "greenpc_format": "dense",
                         "greenpc_scale": "0.6", "greenpc_smooth_its": "2"}):
        pc.setFromOptions()
    A.scale(2.0)  # the same values (exactly) in a new matrix state: the PC is set up again
    A.scale(0.5)
    ksp.setOperators(A)
    ksp.solve(b, smoothed)
    assert context.calls["setUp"] == 2
    pc.apply(b, smoothed)
    assert context.kernel.evaluations == evaluations and context.smoother is not None
    smoothed.axpy(-1.0, plain)
    assert smoothed.norm() > 1e-3 * plain.norm()


def test_driver_variants_reuse_the_set_up_and_match_a_fresh_one():
    """solve_with(..., smoothing=(2,)) solves again on the same kernel matrix: the same iterations and
    residuals as a new set-up with -greenpc_smooth_its 2, and the plain solve is unchanged."""
    from greenpc.driver import solve_with, with_variants

    problem = problems.get("helmholtz2d")
    grid = problems.Grid(2, 24)
    da, A = dmda.build(problem, grid, {"k2": 100.0})
    base = {**GREENPC, "greenpc_kernel": "helmholtz2d", "greenpc_param": "k2=100",
            "greenpc_format": "dense", "greenpc_scale": "0.7"}
    with pushed_options(base):
        shared = with_variants({"greenpc": solve_with(A, da, grid, [0, 1], "greenpc", PETSc.COMM_WORLD,
                                                      smoothing=(2,))})
        plain = solve_with(A, da, grid, [0, 1], "greenpc", PETSc.COMM_WORLD)
    with pushed_options({**base, "greenpc_smooth_its": "2"}):
        fresh = solve_with(A, da, grid, [0, 1], "greenpc", PETSc.COMM_WORLD)
    assert sorted(shared) == ["greenpc", "greenpc+sor2"]
    assert shared["greenpc"]["iterations"] == plain["iterations"]
    assert shared["greenpc+sor2"]["iterations"] == fresh["iterations"] != plain["iterations"]
    assert np.allclose(shared["greenpc+sor2"]["relative_residuals"], fresh["relative_residuals"],
                       rtol=1e-8)
    assert shared["greenpc+sor2"]["setup_s"] == shared["greenpc"]["setup_s"]
    assert shared["greenpc"]["details"]["evaluations"] == plain["details"]["evaluations"]
