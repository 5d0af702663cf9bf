"""In-process solves with greenpc through the options database (petsc4py)."""
import petsc4py

petsc4py.init([])
from petsc4py import PETSc  # noqa: E402

from greenpc import problems  # noqa: E402
from greenpc.driver import pushed_options, solve_with  # noqa: E402
from greenpc.problems import dmda  # noqa: E402

GREENPC = {"pc_type": "python", "pc_python_type": "greenpc.GreenPC"}


def solve(name, N, options, form="interior", params=None, scaling="operator", nrhs=3):
    """The driver's result dict for a preset solved with the given options (paper protocol)."""
    problem = problems.get(name)
    grid = problems.Grid(problem.dim, N, form)
    da, A = dmda.build(problem, grid, params, scaling, PETSc.COMM_WORLD)
    try:
        with pushed_options({**GREENPC, **options}):
            return solve_with(A, da, grid, list(range(nrhs)), "greenpc", PETSc.COMM_WORLD)
    finally:
        A.destroy()
        da.destroy()
