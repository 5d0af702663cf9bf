"""The H-matrix as PETSc matrices: y = N x + U (Vt x), or N x + U (C (Vt x)) on shared bases, against
the dense kernel, serial and on 2 ranks.

Run as a script (under mpiexec) it checks its own rank's rows; the pytest test launches it on 2 ranks.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

PETSc = pytest.importorskip("petsc4py.PETSc")

ROOT = Path(__file__).resolve().parents[1]


#: compressor options and the relative error of the product against the dense kernel
COMPRESSORS = {"aca": (dict(compressor="aca", tol=1e-8), 1e-6),
               "chebyshev": (dict(compressor="chebyshev", order=4, rank=16), 1e-3)}


def check_rows_of_this_rank(comm, n=18, seed=0, balanced=True, exact_rank=0, compressor="aca"):
    """Build this rank's rows of the poisson2d H-matrix, assemble it, compare mult and multTranspose.

    Rows are split evenly between the ranks, or (``balanced=False``) all on rank 0. With
    ``exact_rank``, a random rank-r term u v^T over the whole matrix is added (``HMatrix.add_exact``).
    ``compressor``: a key of ``COMPRESSORS`` (chebyshev: blocks on shared bases, coupled by C).
    """
    from greenpc.hmatrix import build
    from greenpc.hmatrix.petsc import assemble
    from greenpc.kernels import closed_form
    from greenpc.petsc_mats import owned_range

    axis = np.arange(1, n + 1) / (n + 1)
    points = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    kernel = closed_form("poisson2d")
    kernel.spacing = 1.0 / (n + 1)
    size, rank = comm.getSize(), comm.getRank()
    if balanced:
        n_local = len(points) // size + (rank < len(points) % size)
    else:
        n_local = len(points) if rank == 0 else 0
    start, stop = owned_range(comm, n_local)
    options, accuracy = COMPRESSORS[compressor]
    hmatrix = build(kernel, points[start:stop], points, leaf_size=16, eta=0.7, row_offset=start,
                    **options)
    dense = kernel.block(points, points)
    if exact_rank:
        factors = np.random.default_rng(seed + 1).standard_normal((2, len(points), exact_rank))
        hmatrix.add_exact(factors[0][start:stop], factors[1])
        dense = dense + factors[0] @ factors[1].T
        assert hmatrix.storage.exact_rank == exact_rank
    operator = assemble(hmatrix, comm, n_local, len(points))
    assert (operator.c is not None) == (compressor == "chebyshev")

    x_all = np.random.default_rng(seed).standard_normal(len(points))
    x, y = operator.near.createVecs()
    x.setArray(x_all[start:stop])
    operator.mult(x, y)
    np.testing.assert_allclose(y.getArray(), hmatrix.matvec(x_all), rtol=1e-10, atol=1e-14)
    exact = dense[start:stop] @ x_all
    assert np.linalg.norm(y.getArray() - exact) <= accuracy * max(np.linalg.norm(exact), 1e-300)

    operator.multTranspose(x, y)
    exact = (dense.T @ x_all)[start:stop]
    assert np.linalg.norm(y.getArray() - exact) <= accuracy * max(np.linalg.norm(exact), 1e-300)

    assert operator.getInfo(local=True)["total"]["nz_used"] == hmatrix.storage.entries
    assert operator.memory() > 8 * comm.tompi4py().allreduce(hmatrix.storage.entries)
    operator.destroy()


@pytest.mark.parametrize("compressor", sorted(COMPRESSORS))
def test_petsc_operator_matches_dense_on_one_rank(compressor):
    check_rows_of_this_rank(PETSc.COMM_SELF, compressor=compressor)


@pytest.mark.parametrize("compressor", sorted(COMPRESSORS))
def test_an_exact_term_is_part_of_the_petsc_operator(compressor):
    check_rows_of_this_rank(PETSc.COMM_SELF, exact_rank=3, compressor=compressor)


def test_petsc_operator_matches_dense_on_two_ranks():
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run(["mpiexec", "--oversubscribe", "-n", "2", sys.executable, __file__],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("rows checked") == 2


if __name__ == "__main__":
    for name in COMPRESSORS:
        check_rows_of_this_rank(PETSc.COMM_WORLD, compressor=name)
        check_rows_of_this_rank(PETSc.COMM_WORLD, balanced=False, compressor=name)
        check_rows_of_this_rank(PETSc.COMM_WORLD, exact_rank=3, compressor=name)
        # a rank without rows holds only the exact term, which C couples all the same
        check_rows_of_this_rank(PETSc.COMM_WORLD, balanced=False, exact_rank=3, compressor=name)
    print(f"rank {PETSc.COMM_WORLD.getRank()}: rows checked", flush=True)
