"""A Helmholtz model's resonant modes stored exactly beside the H-matrix (-greenpc_hmat_exact_split).

Near a resonance (k2 just above an eigenvalue of the discrete operator) the modes' part S of the kernel
dominates every block: compressing G = R + S to a relative tolerance keeps S and loses R, the part that
preconditions every other mode. With S stored as its exact rank-r factors, the H-matrix compresses R
alone and preconditions as the dense kernel does, even at a loose tolerance.
"""
import json

import numpy as np
import pytest
from petsc4py import PETSc

from greenpc.pc.collective import GreenPCError

from pc_helpers import solve

N = 24


def near_resonance():
    """k2 = 0.02 above the lowest eigenvalue over 300 of the N x N interior grid's -lap_h."""
    h = 1.0 / (N + 1)
    s = np.sin(np.arange(1, N + 1) * np.pi * h / 2.0) ** 2
    lam = np.sort((4.0 / h ** 2 * (s[:, None] + s[None, :])).ravel())
    return float(lam[lam > 300.0][0] + 0.02)


def iterations(k2, **options):
    result = solve("helmholtz2d", N, {"greenpc_weights": "helmholtz2d", "greenpc_param": f"k2={k2!r}",
                                      "greenpc_hmat_leaf_size": "16", **options}, params={"k2": k2})
    assert result["converged"], result["reasons"]
    return result["mean"]


def test_the_h_matrix_with_exact_modes_preconditions_as_the_dense_kernel_near_a_resonance():
    k2 = near_resonance()
    dense = iterations(k2, greenpc_format="dense")
    assert dense <= 20
    for tol in ("1e-4", "1e-2"):     # the network's part to 1e-2 is the default
        assert iterations(k2, greenpc_format="hmatrix", greenpc_hmat_split_tol=tol) <= dense + 1
    # the whole kernel compressed: the same loose tolerance loses the preconditioner (measured 329
    # iterations against 11)
    whole = solve("helmholtz2d", N, {"greenpc_weights": "helmholtz2d", "greenpc_param": f"k2={k2!r}",
                                     "greenpc_hmat_leaf_size": "16", "greenpc_format": "hmatrix",
                                     "greenpc_hmat_tol": "1e-2", "greenpc_hmat_exact_split": "0"},
                  params={"k2": k2})
    assert whole["mean"] > 3 * dense


def test_the_exact_term_on_two_ranks(mpirun, tmp_path):
    """Each rank stores its rows of the exact term, and its part of the diagonal that the fits set."""
    k2 = near_resonance()
    summary = tmp_path / "summary.json"
    mpirun(["examples/solve.py", "-problem", "helmholtz2d", "-k2", repr(k2), "-N", str(N), "-pc_type",
            "python", "-pc_python_type", "greenpc.GreenPC", "-greenpc_weights", "helmholtz2d",
            "-greenpc_param", f"k2={k2!r}", "-greenpc_format", "hmatrix", "-greenpc_hmat_leaf_size", "16",
            "-summary_json", str(summary)], ranks=2, timeout=300)
    (result,) = json.loads(summary.read_text())["runs"]
    assert result["details"]["exact_rank"] > 0
    assert result["converged"] and result["mean"] <= iterations(k2, greenpc_format="dense") + 1


def test_the_memory_plan_counts_the_exact_term():
    """-greenpc_memory_max covers the exact term, r (m + n) entries beside the blocks: with a fixed-rank
    compressor (a plan from the geometry alone) the split plan needs exactly that much more than the
    whole kernel's, and a limit between the two refuses the split H-matrix, naming the option."""
    k2 = near_resonance()
    options = {"greenpc_weights": "helmholtz2d", "greenpc_param": f"k2={k2!r}", "greenpc_format": "hmatrix",
               "greenpc_hmat_leaf_size": "16", "greenpc_hmat_compressor": "nystrom", "greenpc_hmat_rank": "4"}
    split = solve("helmholtz2d", N, options, params={"k2": k2}, nrhs=1)["details"]
    whole = solve("helmholtz2d", N, {**options, "greenpc_hmat_exact_split": "0"}, params={"k2": k2},
                  nrhs=1)["details"]
    exact_bytes = 8 * split["exact_rank"] * 2 * N ** 2
    assert split["exact_rank"] > 0 and "exact term" in split["estimate_basis"]
    assert split["memory_estimate"] - whole["memory_estimate"] == exact_bytes
    limit = (whole["memory_estimate"] + exact_bytes / 2) / 2 ** 20
    with pytest.raises(PETSc.Error) as raised:
        solve("helmholtz2d", N, {**options, "greenpc_memory_max": repr(limit)}, params={"k2": k2}, nrhs=1)
    err = raised.value
    while err is not None and not isinstance(err, GreenPCError):
        err = err.__cause__ or err.__context__
    assert f"-greenpc_memory_max {limit:g} MiB is too small for -greenpc_format hmatrix" in str(err)
