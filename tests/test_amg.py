"""The classical AMG peer (greenpc.amg.ClassicalAMG): a V-cycle preconditioner that converges fast on
the model problems, serially and with the matrix gathered to rank 0 on two ranks."""
import json

import pytest

from pc_helpers import solve

AMG = {"pc_type": "python", "pc_python_type": "greenpc.amg.ClassicalAMG"}


@pytest.mark.parametrize("problem", ["poisson2d", "conv2d", "react2d"])
def test_converges_in_few_iterations(problem):
    result = solve(problem, 48, AMG)
    assert result["converged"]
    assert max(result["iterations"]) <= 10
    assert max(result["relative_residuals"]) < 1e-5


def test_one_cycle_is_a_fixed_linear_map():
    """FGMRES needs no fixed map, but one V-cycle from x = 0 is one: the same iterations for every
    right-hand side scaled by 1000."""
    from petsc4py import PETSc

    from greenpc import problems
    from greenpc.driver import pushed_options
    from greenpc.problems import dmda

    problem = problems.get("poisson2d")
    grid = problems.Grid(2, 24)
    da, A = dmda.build(problem, grid, None, "operator", PETSc.COMM_WORLD)
    with pushed_options(AMG):
        pc = PETSc.PC().create(PETSc.COMM_WORLD)
        pc.setOperators(A)
        pc.setFromOptions()
        pc.setUp()
    b = dmda.random_rhs(grid, da, A, 0)
    y1, y2 = A.createVecLeft(), A.createVecLeft()
    pc.apply(b, y1)
    b.scale(1000.0)
    pc.apply(b, y2)
    y1.scale(1000.0)
    y2.axpy(-1.0, y1)
    assert y2.norm() <= 1e-12 * y1.norm()
    info = pc.getPythonContext().summary()
    assert info["mode"] == "serial" and info["levels"] >= 3
    # the reported figures are those of the hierarchy built from A: the finest level is A itself
    # (all its entries), each level coarser than the one above, and the operator complexity the
    # levels' entries over A's
    levels = pc.getPythonContext().solver.levels
    nnz = [level.A.nnz for level in levels]
    assert info["unknowns"][0] == grid.size and nnz[0] == A.getInfo()["nz_used"]
    assert all(a > b for a, b in zip(info["unknowns"], info["unknowns"][1:]))
    assert info["operator_complexity"] == pytest.approx(sum(nnz) / nnz[0], rel=1e-12)
    for obj in (pc, A, da):
        obj.destroy()


def test_two_ranks_gather_to_rank_zero_match_serial(mpirun, tmp_path):
    runs = {}
    for ranks in (1, 2):
        out = tmp_path / f"amg{ranks}.json"
        mpirun(["examples/solve.py", "-problem", "react2d", "-N", "40", "-compare", "amg",
                "-summary_json", str(out)], ranks=ranks)
        runs[ranks] = json.loads(out.read_text())["runs"][0]
    assert runs[2]["converged"] and runs[2]["details"]["mode"] == "gather"
    assert runs[2]["iterations"] == runs[1]["iterations"]


def test_block_jacobi_mode_converges_on_two_ranks(mpirun, tmp_path):
    out = tmp_path / "block.json"
    mpirun(["examples/solve.py", "-problem", "poisson2d", "-N", "32", "-compare", "amg",
            "-amg_parallel", "block", "-summary_json", str(out)], ranks=2)
    run = json.loads(out.read_text())["runs"][0]
    assert run["converged"] and run["details"]["mode"] == "block"


def test_bad_option_names_the_option():
    from petsc4py import PETSc

    from greenpc.options import OptionError

    with pytest.raises(PETSc.Error) as info:
        solve("poisson2d", 16, {**AMG, "amg_cycle": "z"}, nrhs=1)
    err = info.value
    while err is not None and not isinstance(err, OptionError):
        err = err.__cause__ or err.__context__
    assert err is not None and "-amg_cycle 'z': expected one of v, w, f" in str(err)
