"""The distributed discretization: the same matrix on 1 and 2 ranks; the solve driver under mpiexec."""
import json

import numpy as np
import pytest

from greenpc import problems


def signature(run, ranks, name, N, form):
    out = run(["tests/scripts/matrix_signature.py", name, str(N), form], ranks=ranks, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name,N,form", [("conv2d", 12, "interior"), ("rotlap2d", 9, "boundary"),
                                         ("react1d", 30, "interior")])
def test_one_and_two_ranks_give_the_same_matrix(mpirun, name, N, form):
    serial, parallel = signature(mpirun, 1, name, N, form), signature(mpirun, 2, name, N, form)
    assert np.allclose(serial["norms"], parallel["norms"], rtol=1e-13)
    assert np.allclose(serial["product"], parallel["product"], rtol=1e-13, atol=1e-12)
    assert serial["coordinates_ok"] and parallel["coordinates_ok"]
    # and both equal the serial scipy assembly
    problem = problems.get(name)
    grid = problems.Grid(problem.dim, N, form)
    params = {"theta": 0.3} if name == "rotlap2d" else {}
    x = np.sin(1.0 + np.arange(grid.size))
    expected = problems.assemble_scipy(problem, grid, params) @ x
    assert np.allclose(parallel["product"], expected, rtol=1e-13, atol=1e-10)


def test_driver_runs_on_two_ranks_and_reports_the_protocol(mpirun, tmp_path):
    summary = tmp_path / "s.json"
    mpirun(["examples/solve.py", "-problem", "conv2d", "-N", "32", "-compare", "none,ilu,gamg",
            "-summary_json", str(summary)], ranks=2, timeout=300)
    result = json.loads(summary.read_text())
    assert result["ranks"] == 2 and result["unknowns"] == 32 * 32
    runs = {r["pc"]: r for r in result["runs"]}
    assert set(runs) == {"none", "ilu", "gamg"}
    for run in runs.values():
        assert run["ksp_type"] == "fgmres" and len(run["iterations"]) == 3
        assert all(res <= 1.01e-6 for res, ok in zip(run["relative_residuals"], run["reasons"]) if ok > 0)
    assert runs["ilu"]["mean"] < runs["none"]["mean"]
    assert runs["ilu"]["converged"]


def test_driver_same_iterations_on_one_and_two_ranks_with_lu(mpirun, tmp_path):
    counts = []
    for ranks in (1, 2):
        summary = tmp_path / f"s{ranks}.json"
        mpirun(["examples/solve.py", "-problem", "react2d", "-N", "24", "-pc_type", "lu"]
               + (["-pc_type", "redundant", "-redundant_pc_type", "lu"] if ranks > 1 else [])
               + ["-summary_json", str(summary)], ranks=ranks, timeout=120)
        counts.append(json.loads(summary.read_text())["runs"][0]["iterations"])
    assert counts[0] == counts[1] == [1, 1, 1]
