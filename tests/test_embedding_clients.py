"""Clients greenpc did not shape, under mpiexec -n 2 with greenpc from options alone: the C example
(built here, into a temporary folder, against the PETSc of this environment) and the petsc4py
``examples/existing_code.py``; and the ``greenpc-env`` helper that says what a C code needs."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import MPI_ENV, ROOT
from greenpc import env

GREENPC = ["-python", "-pc_type", "python", "-pc_python_type", "greenpc.GreenPC",
           "-greenpc_kernel", "poisson2d"]
RESULT = re.compile(r"grid (\d+) x (\d+)(?:, beta \S+)?: (\d+) iterations.*max error (\S+)")


def finished(command, environment=None, timeout=120):
    result = subprocess.run(command, cwd=ROOT, env={**os.environ, **MPI_ENV, **(environment or {})},
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (f"{' '.join(map(str, command))} failed ({result.returncode}):\n"
                                    f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def outcome(out):
    """(iterations, max error) from the examples' last line."""
    match = RESULT.search(out)
    assert match, out
    return int(match.group(3)), float(match.group(4))


@pytest.fixture(scope="module")
def c_example(tmp_path_factory):
    compiler = env.petsc_variables(env.petsc_dir()).get("PCC", "mpicc")
    if shutil.which("make") is None or shutil.which(compiler) is None:
        pytest.skip(f"make or PETSc's compiler {compiler} is missing")
    build = tmp_path_factory.mktemp("c_example")
    finished(["make", "-C", "examples/c", f"PETSC_DIR={env.petsc_dir()}", f"BUILD={build}"])
    return str(build / "poisson2d")


def run_c(executable, options):
    """The C example on two ranks, in the environment greenpc-env describes."""
    environment = {"PETSC_DIR": env.petsc_dir(),
                   "PATH": env.python_bin() + os.pathsep + os.environ.get("PATH", "")}
    return finished(["mpiexec", "--oversubscribe", "-n", "2", executable, "-ksp_type", "fgmres",
                     "-ksp_view"] + options, environment)


def test_c_example_with_greenpc_from_options(c_example):
    out = run_c(c_example, GREENPC)
    iterations, error = outcome(out)
    assert "Python: greenpc.GreenPC" in out and "type: mpiaij" in out
    assert "geometry: 1089 points from the DMDA grid (no coordinates set" in out
    assert iterations <= 5 and error < 1e-3  # O(h^2) discretization error: 8.0e-4 at h = 1/32


def test_c_example_baij_matrix_and_pc_set_coordinates(c_example):
    out = run_c(c_example, GREENPC + ["-dm_mat_type", "baij", "-pc_coordinates"])
    iterations, error = outcome(out)
    assert "type: mpibaij" in out and "geometry: 1089 points from the PC coordinates" in out
    assert iterations <= 5 and error < 1e-3


def test_c_example_composite_with_sor_through_options(c_example):
    options = ["-python", "-pc_type", "composite", "-pc_composite_type", "multiplicative",
               "-pc_composite_pcs", "python,sor", "-sub_0_pc_python_type", "greenpc.GreenPC",
               "-sub_0_greenpc_kernel", "poisson2d"]
    out = run_c(c_example, options)
    iterations, error = outcome(out)
    assert "PC Object: (sub_0_)" in out and "kernel: poisson2d" in out and "type: sor" in out
    assert iterations <= 5 and error < 1e-3


def test_makefile_target_builds_and_runs_the_c_example():
    out = finished(["make", "-n", "c-example"])
    assert "examples/c" in out and "-python -pc_type python" in out and "PETSC_DIR=" in out


def test_existing_petsc4py_code_on_two_ranks(mpirun):
    plain, _ = outcome(mpirun(["examples/existing_code.py"], ranks=2, timeout=120).stdout)
    out = mpirun(["examples/existing_code.py", "-ksp_type", "fgmres", "-ksp_view"] + GREENPC[1:],
                 ranks=2, timeout=120).stdout
    iterations, error = outcome(out)
    assert "geometry: 2401 points from the DMDA coordinates of the Pmat" in out
    assert iterations < plain and error < 1e-3


def test_greenpc_env_prints_what_a_c_code_needs():
    out = finished([sys.executable, "-m", "greenpc.env"])
    assert f"export PETSC_DIR={env.petsc_dir()}" in out
    assert "-lpetsc" in out and "-python -pc_type python -pc_python_type greenpc.GreenPC" in out
    shell = finished(["bash", "-c", f'eval "$({sys.executable} -m greenpc.env --shell)"; '
                      'echo "$PETSC_DIR"; command -v python3'])
    petsc_dir, python3 = shell.split()
    assert petsc_dir == env.petsc_dir()
    assert os.path.dirname(python3) == env.python_bin()
