"""-greenpc_wall_correction: a kernel less the interpolant of its wall values in x (greenpc.kernels.walls).

The interpolant reproduces functions that are bilinear in x, and vanishes for a kernel that is zero on the
walls already. So an exact Green's function plus any such offset comes back exactly, and the exact one
alone is left as it is. On the shipped react2d model, whose Dirichlet condition is learned only
approximately, the correction removes most of the growth of the iteration count with N.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from greenpc.kernels import Kernel, closed_form
from greenpc.kernels.walls import WallCorrected

ROOT = Path(__file__).resolve().parents[1]


class Offset(Kernel):
    """G plus an offset that is bilinear in x, with coefficients that vary with y."""

    def __init__(self, exact):
        super().__init__()
        self.exact, self.dim, self.domain = exact, exact.dim, exact.domain

    def _evaluate(self, x, y):
        c = np.cos(3.0 * y.sum(axis=1)), np.sin(2.0 * y[:, 0]), 1.0 + y[:, -1] ** 2, y.prod(axis=1)
        offset = c[0] + c[1] * x[:, 0]
        if self.dim == 2:
            offset = offset + c[2] * x[:, 1] + c[3] * x[:, 0] * x[:, 1]
        return self.exact._evaluate(x, y) + offset


@pytest.mark.parametrize("name", ["poisson1d", "poisson2d"])
def test_an_offset_bilinear_in_x_is_removed_and_an_exact_kernel_kept(name):
    exact = closed_form(name, {})
    if exact.uses_spacing:
        exact.spacing = 1.0 / 65
    rng = np.random.default_rng(0)
    x, y = rng.random((500, exact.dim)), rng.random((500, exact.dim))
    reference = exact(x, y)
    scale = np.abs(reference).max()
    assert np.abs(WallCorrected(Offset(exact))(x, y) - reference).max() <= 1e-12 * scale
    assert np.abs(WallCorrected(exact)(x, y) - reference).max() <= 1e-12 * scale
    # and the offset alone is not small: the test would see a correction that did nothing
    assert np.abs(Offset(exact)(x, y) - reference).max() > 0.1 * scale


def test_the_corrected_kernel_vanishes_on_every_wall():
    exact = closed_form("poisson2d", {})
    exact.spacing = 1.0 / 65
    rng = np.random.default_rng(1)
    t = rng.random(40)
    walls = np.concatenate([np.stack([np.zeros_like(t), t], 1), np.stack([np.ones_like(t), t], 1),
                            np.stack([t, np.zeros_like(t)], 1), np.stack([t, np.ones_like(t)], 1)])
    y = rng.random((len(walls), 2))
    offset = Offset(exact)
    assert np.abs(offset(walls, y)).max() > 0.5
    assert np.abs(WallCorrected(offset)(walls, y)).max() <= 1e-12


def test_a_block_evaluates_each_wall_value_once():
    """On a k x k patch of grid rows against n columns: (4 k + 4) n wall pairs, not 8 k^2 n."""
    exact = closed_form("poisson2d", {})
    exact.spacing = 1.0 / 65
    k, h = 8, 1.0 / 65
    patch = np.stack(np.meshgrid(np.arange(1, k + 1) * h, np.arange(3, k + 3) * h, indexing="ij"), -1)
    cols = np.random.default_rng(2).random((30, 2))
    corrected = WallCorrected(exact)
    corrected.block(patch.reshape(-1, 2), cols)
    assert corrected.wall_evaluations == (4 * k + 4) * len(cols)


def test_the_wall_correction_removes_react2ds_growth_with_n():
    """react2d, dense, N = 64: 13 iterations with the learned kernel; 9.3 with the correction (at
    N = 96 / 128: 16.7 / 20 against 10 / 10)."""
    from pc_helpers import solve
    options = {"greenpc_weights": "react2d", "greenpc_format": "dense"}    # 14 s / 20 s of set-up
    plain = solve("react2d", 64, options)
    corrected = solve("react2d", 64, {**options, "greenpc_wall_correction": "1"})
    assert plain["converged"] and corrected["converged"]
    assert corrected["mean"] <= 10 < plain["mean"]
    assert corrected["details"]["wall_evaluations"] > 0
    assert "wall values" in corrected["details"]["kernel"]


def grid_points(n):
    axis = np.arange(1, n + 1) / (n + 1)
    return np.stack(np.meshgrid(axis, axis[:-3], indexing="ij"), -1).reshape(-1, 2)


def test_the_wall_table_gives_the_same_values_once_for_all_calls():
    """prepare(points): (2 (n1 + n2) + 4) n pairs once; then pairs among the points cost no wall
    evaluation and give the values the kernel finds by itself; other points still find their own."""
    exact = closed_form("poisson2d", {})
    exact.spacing = 1.0 / 17
    points = grid_points(16)                      # 16 x 13: the two axes differ
    rng = np.random.default_rng(3)
    i, j = rng.integers(0, len(points), (2, 4000))
    alone, tabulated = WallCorrected(Offset(exact)), WallCorrected(Offset(exact))
    tabulated.prepare(points)
    assert tabulated.wall_evaluations == (2 * (16 + 13) + 4) * len(points)
    np.testing.assert_allclose(tabulated(points[i], points[j]), alone(points[i], points[j]),
                               rtol=0, atol=1e-13)
    np.testing.assert_allclose(tabulated(points[i], points[j]), exact(points[i], points[j]),
                               rtol=0, atol=1e-12)
    assert tabulated.wall_evaluations == (2 * (16 + 13) + 4) * len(points)
    tabulated.prepare(points.copy())              # the same points: the table is kept
    assert tabulated.wall_evaluations == (2 * (16 + 13) + 4) * len(points)
    elsewhere = rng.random((50, 2))
    np.testing.assert_allclose(tabulated(elsewhere, points[:50]), exact(elsewhere, points[:50]),
                               rtol=0, atol=1e-12)
    assert tabulated.wall_evaluations > (2 * (16 + 13) + 4) * len(points)


def check_shared_table(comm):
    """Run under mpiexec: the ranks' shares gathered are the one-process table, each rank evaluating
    its share only; then a PC solve with the correction on these ranks, whose count is printed."""
    exact = closed_form("poisson2d", {})
    exact.spacing = 1.0 / 17
    points = grid_points(16)
    whole = WallCorrected(exact)
    whole.prepare(points)
    shared = WallCorrected(exact)
    shared.install(shared.share(points, comm.Get_rank(), comm.Get_size()), comm)
    assert np.array_equal(shared.table.rows, whole.table.rows)
    assert shared.wall_evaluations < 0.6 * whole.wall_evaluations
    from pc_helpers import solve
    result = solve("react2d", 24, {"greenpc_weights": "react2d", "greenpc_format": "hmatrix",
                                   "greenpc_wall_correction": "1"})
    assert result["converged"]
    means = comm.allgather(result["mean"])
    assert means == [means[0]] * len(means)
    if comm.Get_rank() == 0:     # one rank prints: mpiexec may interleave two ranks' lines
        print(f"{len(means)} ranks: table shared, iterations {means[0]}", flush=True)


def test_ranks_share_the_table_and_solve_as_one_rank_does():
    from pc_helpers import solve
    one = solve("react2d", 24, {"greenpc_weights": "react2d", "greenpc_format": "hmatrix",
                                "greenpc_wall_correction": "1"})
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), str(ROOT / "tests"),
                                                        os.environ.get("PYTHONPATH")])))
    done = subprocess.run(["mpiexec", "--oversubscribe", "-n", "2", sys.executable, __file__],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    counts = [float(line.rsplit(" ", 1)[1]) for line in done.stdout.splitlines() if "table shared" in line]
    assert done.stdout.count("2 ranks: table shared") == 1 and len(counts) == 1
    assert abs(counts[0] - one["mean"]) <= 1     # float32 sums in another order may move one
    assert one["details"]["wall_evaluations"] > 0


if __name__ == "__main__":
    from mpi4py import MPI
    check_shared_table(MPI.COMM_WORLD)


def test_the_sparse_format_finds_its_few_wall_values_without_the_table():
    """A sparse pattern's pairs are near each other: at N = 96 they need far fewer wall pairs than the
    table's (4N + 4) n (3.6M), which only the dense and H-matrix formats build."""
    from pc_helpers import solve
    sparse = solve("react2d", 96, {"greenpc_weights": "react2d", "greenpc_wall_correction": "1",
                                   "greenpc_format": "sparse"})
    assert sparse["details"]["format"] == "sparse"
    assert 0 < sparse["details"]["wall_evaluations"] < 0.25 * (4 * 96 + 4) * 96 ** 2
