"""Shared helpers: MPI subprocesses with a time limit, and OpenMPI's root permission."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMPI_MCA_rmaps_base_oversubscribe": "1", "PYTHONUNBUFFERED": "1"}


def run_python(args, ranks=1, timeout=300, check=True):
    """Run ``python args...`` (under ``mpiexec -n ranks`` when ranks > 1); returns the completed process."""
    command = [sys.executable] + list(args)
    if ranks > 1:
        command = ["mpiexec", "--oversubscribe", "-n", str(ranks)] + command
    env = {**os.environ, **MPI_ENV}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


@pytest.fixture
def mpirun():
    return run_python
