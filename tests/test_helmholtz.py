"""Strongly indefinite Helmholtz problems: presets, the closed-form 2D Green's function, the shifted-
Laplacian peer, and greenpc converging where the algebraic preconditioners do not."""
import json

import numpy as np
import pytest
import scipy.sparse.linalg as spla

from greenpc import models, problems
from greenpc.kernels import KernelError
from greenpc.kernels.closedform import Helmholtz2D, Poisson2D, Shifted1D
from pc_helpers import solve


def grid_points(N):
    h = 1.0 / (N + 1)
    axis = h * np.arange(1, N + 1)
    # the grid's natural order: first coordinate fastest
    return np.stack([np.tile(axis, N), np.repeat(axis, N)], axis=1)


def test_profiles_and_the_shifted_laplacian():
    preset = problems.get("helmholtz2d")
    x = np.random.default_rng(0).random((200, 2))
    assert np.allclose(preset.c(x, {"k2": 300.0}), -300.0)
    inclusion = preset.c(x, {"k2": 300.0, "gauss": 2.0})
    assert np.all(inclusion < -300.0) and np.isclose(
        preset.c(np.array([[0.5, 0.5]]), {"k2": 300.0, "gauss": 2.0})[0], -900.0)
    layered = preset.c(np.array([[0.3, 0.1], [0.3, 0.9]]), {"k2": 100.0, "layers": 0.5})
    assert np.allclose(layered, [-50.0, -150.0], rtol=1e-6)
    shifted = problems.shifted_laplacian(preset)
    assert np.allclose(shifted.c(x, {"k2": 300.0, "gauss": 1.0}), -preset.c(x, {"k2": 300.0, "gauss": 1.0}))
    with pytest.raises(ValueError, match="layers=0.95 is outside"):
        preset.resolve({"layers": 0.95})
    # a constant medium is the shifted preset
    grid = problems.Grid(1, 40, "interior")
    A = problems.assemble_scipy(problems.get("helmholtz1d"), grid, {"k2": 200.0})
    B = problems.assemble_scipy(problems.get("shifted1d"), grid, {"k2": 200.0})
    assert abs(A - B).max() == 0.0


@pytest.mark.parametrize("k2", [300.0, 1000.0])
def test_closed_form_solves_the_helmholtz_equation(k2):
    """-lap G - k2 G = 0 away from the source (fourth-order differences), G = 0 on the boundary, and
    G(x, y) = G(y, x)."""
    kernel = Helmholtz2D(k2, modes=256)
    rng = np.random.default_rng(1)
    y = rng.uniform(0.2, 0.8, (40, 2))
    x = np.clip(y + rng.choice([-1, 1], (40, 2)) * rng.uniform(0.1, 0.2, (40, 2)), 0.05, 0.95)
    d = 2e-3
    centre = kernel(x, y)
    lap = np.zeros(len(x))
    for axis in range(2):
        e = np.zeros(2)
        e[axis] = d
        # fourth-order second difference (-f(2) + 16 f(1) - 30 f(0) + 16 f(-1) - f(-2)) / 12 d^2
        lap += (-kernel(x + 2 * e, y) + 16 * kernel(x + e, y) - 30 * centre + 16 * kernel(x - e, y)
                - kernel(x - 2 * e, y)) / (12 * d ** 2)
    residual = -lap - k2 * centre
    assert np.max(np.abs(residual)) < 2e-3 * k2 * np.max(np.abs(centre))
    edge = np.column_stack([rng.random(20), np.zeros(20)])
    assert np.max(np.abs(kernel(edge, y[:20]))) < 1e-12
    assert np.allclose(kernel(x, y), kernel(y, x), rtol=1e-10, atol=1e-12)


def test_closed_form_series_converges_and_matches_the_laplacian_at_k2_zero():
    rng = np.random.default_rng(2)
    x, y = rng.random((500, 2)), rng.random((500, 2))
    assert np.allclose(Helmholtz2D(0.0)(x, y), Poisson2D()(x, y), rtol=0, atol=1e-13)
    reference = Helmholtz2D(1000.0, modes=1024)(x, y)
    errors = [np.max(np.abs(Helmholtz2D(1000.0, modes=m)(x, y) - reference)) for m in (32, 64, 128)]
    # the tail falls like k2 / (pi^3 modes^2)
    assert errors[0] < 1000.0 / (np.pi ** 3 * 32 ** 2) and errors[2] < errors[0] / 4


def test_closed_form_tends_to_the_discrete_inverse():
    """(A^{-1})_ij / h^2 -> G(x_i, x_j) off the diagonal as h -> 0 (k2 = 300, no resonance near)."""
    errors = []
    for N in (24, 48):
        grid = problems.Grid(2, N, "interior")
        A = problems.assemble_scipy(problems.get("helmholtz2d"), grid, {"k2": 300.0}).tocsc()
        points = grid_points(N)
        j = (N // 3) * N + N // 2
        e = np.zeros(N * N)
        e[j] = 1.0
        column = spla.spsolve(A, e) * (N + 1) ** 2
        values = Helmholtz2D(300.0)(points, np.repeat(points[j:j + 1], N * N, axis=0))
        far = np.linalg.norm(points - points[j], axis=1) > 0.1
        errors.append(np.max(np.abs(values - column)[far]) / np.max(np.abs(column)))
    # measured 0.34, 0.11 (and 0.030 at N = 96): second order in h
    assert errors[1] < 0.15 and errors[1] < 0.5 * errors[0]


def test_eigenvalues_are_refused():
    with pytest.raises(KernelError, match="eigenvalue"):
        Helmholtz2D(5 * np.pi ** 2)
    with pytest.raises(KernelError, match="eigenvalue"):
        Shifted1D(4 * np.pi ** 2)


def test_greenpc_converges_where_amg_and_ilu_do_not():
    """k2 = 300 at N = 32: the exact Green's function gives a handful of iterations; classical AMG and
    ILU(0) do not converge in the paper's protocol and GAMG needs several times more."""
    base = {"greenpc_kernel": "helmholtz2d", "greenpc_param": "k2=300"}
    dense = solve("helmholtz2d", 32, {**base, "greenpc_format": "dense"}, params={"k2": 300.0}, nrhs=2)
    assert dense["converged"] and max(dense["iterations"]) <= 10
    peers = {}
    for name, options in (("ilu", {"pc_type": "ilu"}), ("gamg", {"pc_type": "gamg"}),
                          ("amg", {"pc_type": "python", "pc_python_type": "greenpc.amg.ClassicalAMG"})):
        peers[name] = solve("helmholtz2d", 32, options, params={"k2": 300.0}, nrhs=2)
    assert not peers["amg"]["converged"]
    assert all(not r["converged"] or min(r["iterations"]) > 3 * max(dense["iterations"])
               for r in peers.values())


def test_the_oscillating_closed_form_is_compressed_by_aca():
    """k2 = 500 at N = 32: -greenpc_hmat_compressor auto takes ACA for an oscillating kernel; 4 x 4
    Chebyshev points per cluster under-resolve it (measured 94 iterations against 13)."""
    base = {"greenpc_kernel": "helmholtz2d", "greenpc_param": "k2=500", "greenpc_format": "hmatrix"}
    auto = solve("helmholtz2d", 32, base, params={"k2": 500.0}, nrhs=1)
    assert auto["details"]["compressor"] == "aca" and auto["converged"] and auto["mean"] <= 15
    cheb = solve("helmholtz2d", 32, {**base, "greenpc_hmat_compressor": "chebyshev"}, params={"k2": 500.0},
                 nrhs=1)
    assert cheb["details"]["compressor"] == "chebyshev" and cheb["mean"] > 3 * auto["mean"]


def test_which_kernels_oscillate():
    """What -greenpc_hmat_compressor auto asks: Helmholtz kernels with k2 > 0 oscillate, unless the H-matrix
    compresses a split model's network part alone (its modes are the exact term)."""
    from greenpc import weights
    from greenpc.kernels.learned import LearnedKernel
    from greenpc.pc.formats import oscillates

    assert oscillates(Helmholtz2D(300.0), True) and oscillates(Shifted1D(50.0), True)
    assert not oscillates(Helmholtz2D(-50.0), True) and not oscillates(Shifted1D(-50.0), True)
    assert not oscillates(Poisson2D(), True)
    model = LearnedKernel(weights.load(models.path("helmholtz2d")), {"k2": 300.0})
    assert not oscillates(model, True) and oscillates(model, False)
    assert model.split_added       # the context put S back
    assert not oscillates(LearnedKernel(weights.load(models.path("react2d"))), False)


def test_shifted_peer_refuses_to_run_without_the_shifted_matrix():
    """'gamg-shifted' is plain GAMG without its P: solve_with refuses instead of running that."""
    from petsc4py import PETSc

    from greenpc.driver import solve_with
    from greenpc.problems import dmda

    grid = problems.Grid(2, 8, "interior")
    da, A = dmda.build(problems.get("helmholtz2d"), grid, {"k2": 100.0}, "operator", PETSc.COMM_WORLD)
    with pytest.raises(ValueError, match="gamg-shifted: needs the shifted-Laplacian matrix"):
        solve_with(A, da, grid, [0], "gamg-shifted", PETSc.COMM_WORLD)
    A.destroy()
    da.destroy()


def test_shifted_laplacian_peer_and_bench_driver(mpirun, tmp_path):
    mpirun(["bench/helmholtz.py", "-helmholtz_k2", "300", "-helmholtz_sweep_N", "16",
                "-helmholtz_sizes", "20", "-helmholtz_table_k2", "300", "-helmholtz_profiles",
                "constant,gauss", "-helmholtz_peers", "gamg,gamg-shifted,lu", "-helmholtz_nrhs", "2",
                "-helmholtz_out", str(tmp_path)], timeout=600)
    data = json.loads((tmp_path / "helmholtz.json").read_text())
    assert (tmp_path / "iterations_vs_k2.png").exists() and (tmp_path / "README.md").exists()
    for case in data["sweep"] + data["table"]:
        results = case["results"]
        assert results["lu"]["iterations"] == [1, 1]
        # the shifted Laplacian is a different, positive definite matrix: a worse but working PC here
        shifted = results["gamg-shifted"]
        assert shifted["converged"] and shifted["mean"] > results["gamg"]["mean"]
        if case["profile"] == "constant":
            exact = results["greenpc-exact"]
            assert exact["converged"] and exact["mean"] <= 15
        else:
            assert "no closed form" in results["greenpc-exact"]["skipped"]
        # greenpc with a learned model runs only where a shipped helmholtz2d model exists
        assert "greenpc" in results
        if "skipped" not in results["greenpc"]:
            # -helmholtz_smoothing 2 (the default): the same set-up solved again with two SOR sweeps
            smoothed = results["greenpc+sor2"]
            assert smoothed["converged"] and smoothed["setup_s"] == results["greenpc"]["setup_s"]
        if "helmholtz2d" not in models.names():
            assert "no shipped helmholtz2d model" in results["greenpc"]["skipped"]
    growth = [row for row in data["hmatrix_growth"] if row["kernel"] == "greenpc-exact"]
    assert [row["N"] for row in growth] == [16, 20]
    # a second run of one medium keeps the cases it does not repeat, marked with the first run's date
    mpirun(["bench/helmholtz.py", "-helmholtz_k2", "300", "-helmholtz_sweep_N", "16",
            "-helmholtz_sizes", "16", "-helmholtz_table_k2", "300", "-helmholtz_profiles", "constant",
            "-helmholtz_peers", "gamg,gamg-shifted,lu", "-helmholtz_nrhs", "2", "-helmholtz_out", str(tmp_path)], timeout=600)
    again = json.loads((tmp_path / "helmholtz.json").read_text())
    cases = [(c["profile"], c["N"], c["k2"]) for c in again["sweep"] + again["table"]]
    assert sorted(cases) == sorted([(c["profile"], c["N"], c["k2"]) for c in data["sweep"] + data["table"]]
                                   + [("constant", 16, 300.0)])
    kept = [c for c in again["sweep"] + again["table"] if "date" in c]
    assert {(c["profile"], c["N"]) for c in kept} == {("gauss", 16), ("gauss", 20), ("constant", 20)}
    assert all(c["date"] == data["date"] for c in kept)
    assert "Rows marked * were kept" in (tmp_path / "README.md").read_text()
