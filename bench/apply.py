"""Apply cost: one greenpc apply against one MatMult with A, in time, bytes and memory bandwidth.

    python bench/apply.py                                   # bench/results/apply_np1.json + .png
    python bench/apply.py -apply_configs poisson2d:sparse:128,react1d:hmatrix:4096

Each configuration ``problem:format:N`` sets greenpc up on the problem's N^d grid (its shipped model, or
the labelled closed-form stand-in), then times PCApply (through the KSP's PC, as FGMRES calls it) and
MatMult with A, each the best of several rounds of repeated products. The bytes an apply must move are
counted from the stored matrices (a value and a column index per entry, the row pointers), plus reading
x once and writing y (reading it too where PETSc adds into it: the H-matrix's U (Vt x) term), as a
lower bound that assumes x stays in cache. Their ratio to A's bytes, and the achieved bandwidth (bytes /
time) as a fraction of a STREAM-style copy measured in the same run (``machine.copy_bandwidth``), say
how far the apply is from the machine's memory limit. On several ranks, bytes are summed over the ranks
and the copy runs on all ranks at once.
"""
import os
import sys
import time

import petsc4py

petsc4py.init(sys.argv)
import numpy as np  # noqa: E402
from mpi4py import MPI  # noqa: E402
from petsc4py import PETSc  # noqa: E402

import candidates  # noqa: E402
import machine  # noqa: E402
import records  # noqa: E402
from greenpc.options import Option, positive, read  # noqa: E402

SPECS = (
    Option("configs", str, "poisson2d:sparse:512,poisson2d:hmatrix:128,poisson2d:hmatrix-cheb:128,"
           "conv2d:hmatrix-cheb:256,poisson2d:dense:64,react1d:sparse:262144,react1d:hmatrix:16384",
           "problem:format:N entries (format: a configuration of bench/candidates.py)"),
    Option("seconds", float, 0.3, "least time of one round of repeated products", check=positive),
    Option("rounds", int, 5, "rounds (the fastest counts)", check=positive),
    Option("copy_mib", int, 256, "MiB per rank of the STREAM-style copy", check=positive),
    Option("out", str, records.RESULTS, "folder of the JSON results and the plot"),
)
INDEX_BYTES = np.dtype(PETSc.IntType).itemsize
VALUE_BYTES = np.dtype(PETSc.ScalarType).itemsize


def aij_bytes(mat):
    """Bytes of this rank's part of an AIJ matrix that a product reads: entries, indices, row pointers
    (MPIAIJ keeps a diagonal and an off-diagonal part, each with its row pointers)."""
    rows = mat.getLocalSize()[0]
    if mat.getType() in ("seqdense", "mpidense"):
        return rows * mat.getSize()[1] * VALUE_BYTES
    info = mat.getInfo(PETSc.Mat.InfoType.LOCAL)
    parts = 2 if mat.getComm().getSize() > 1 else 1
    return int(info["nz_used"]) * (VALUE_BYTES + INDEX_BYTES) + parts * (rows + 1) * INDEX_BYTES


def product_bytes(mat, add=False):
    """Bytes of y = mat x (or y += mat x) on this rank: the matrix, x once, y written (and read)."""
    rows, cols = mat.getLocalSize()
    return aij_bytes(mat) + VALUE_BYTES * (cols + rows * (2 if add else 1))


def apply_bytes(op):
    """Bytes of one greenpc apply on this rank (``ApproximateInverse``)."""
    if op.kind != "hmatrix":
        return product_bytes(op.mat)
    h = op.mat
    coupling = product_bytes(h.c) if h.c is not None else 0
    return product_bytes(h.vt) + coupling + product_bytes(h.near) + product_bytes(h.u, add=True)


def timed(comm, product, seconds, rounds):
    """Seconds per product: the best round mean, every rank starting each round together. A round
    repeats the product for about ``seconds``. The product is collective on several ranks, so every
    count is agreed by all ranks (a rank doing one product more than another would wait forever)."""
    mpi = comm.tompi4py()
    product()
    mpi.Barrier()
    start = time.perf_counter()
    for _ in range(3):
        product()
    each = mpi.allreduce((time.perf_counter() - start) / 3, op=MPI.MAX)
    repeats = max(3, int(np.ceil(seconds / each)))
    best = float("inf")
    for _ in range(rounds):
        mpi.Barrier()
        start = time.perf_counter()
        for _ in range(repeats):
            product()
        mpi.Barrier()
        best = min(best, (time.perf_counter() - start) / repeats)
    return mpi.allreduce(best, op=MPI.MAX)


def measure(problem, fmt, N, copy, opts, comm):
    mpi = comm.tompi4py()
    choice = candidates.KernelChoice(problem)
    ksp, A, da, grid, setup = candidates.set_up_greenpc(choice, fmt, N, comm)
    pc = ksp.getPC()
    context = pc.getPythonContext()
    x, y = A.createVecRight(), A.createVecLeft()
    x.setRandom()
    apply_s = timed(comm, lambda: pc.apply(x, y), opts["seconds"], opts["rounds"])
    mult_s = timed(comm, lambda: A.mult(x, y), opts["seconds"], opts["rounds"])
    greenpc_bytes = mpi.allreduce(apply_bytes(context.op))
    a_bytes = mpi.allreduce(product_bytes(A))
    bandwidth = greenpc_bytes / apply_s
    info = context.summary()
    result = {**choice.record(), "problem": problem, "format": info["format"], "config": fmt, "N": N,
              "n": grid.size, "setup_s": setup, "apply_s": apply_s, "matmult_s": mult_s,
              "time_ratio": apply_s / mult_s, "apply_bytes": greenpc_bytes,
              "matmult_bytes": a_bytes, "bytes_ratio": greenpc_bytes / a_bytes,
              "apply_bandwidth": bandwidth, "matmult_bandwidth": a_bytes / mult_s,
              "fraction_of_copy": bandwidth / copy["best"],
              "matmult_fraction_of_copy": a_bytes / mult_s / copy["best"],
              "entries": mpi.allreduce(info["entries_local"])}
    for obj in (x, y, ksp, A, da):
        obj.destroy()
    return result


def plot(path, data):
    plt = records.pyplot()
    runs = [r for r in data["runs"] if "skipped" not in r]
    labels = [f"{r['problem']}\n{r.get('config', r['format'])} n={r['n']}"
              + ("\n(stand-in)" if r["stand_in"] else "") for r in runs]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    at = np.arange(len(runs))
    axes[0].bar(at - 0.2, [r["time_ratio"] for r in runs], 0.4, label="time")
    axes[0].bar(at + 0.2, [r["bytes_ratio"] for r in runs], 0.4, label="bytes")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("greenpc apply / MatMult with A")
    axes[1].bar(at - 0.2, [r["fraction_of_copy"] for r in runs], 0.4, label="greenpc apply")
    axes[1].bar(at + 0.2, [r["matmult_fraction_of_copy"] for r in runs], 0.4, label="MatMult A")
    axes[1].axhline(0.5, color="grey", ls="--", lw=0.8, label="target 0.5")
    axes[1].set_ylabel("achieved bandwidth / copy bandwidth")
    for ax in axes:
        ax.set_xticks(at, labels, fontsize=7)
        ax.legend(fontsize=8)
    copy = data["copy_bandwidth"]["best"] / 1e9
    records.save_figure(fig, path, f"apply cost (copy {copy:.1f} GB/s): "
                                   f"{machine.label(data['machine'])}")


def main():
    opts = read(SPECS, "apply_")
    comm = PETSc.COMM_WORLD
    results = records.Results(os.path.join(opts["out"], f"apply_np{comm.getSize()}.json"), opts,
                              "apply cost", comm, runs=[])
    data = results.data
    data["copy_bandwidth"] = copy = machine.copy_bandwidth(comm, opts["copy_mib"])
    records.log(f"  STREAM-style copy: PETSc VecCopy {copy['petsc_vec_copy'] / 1e9:.2f} GB/s, "
                f"numpy {copy['numpy_copy'] / 1e9:.2f} GB/s")
    for entry in records.names(opts["configs"]):
        problem, fmt, N = entry.split(":")
        result = measure(problem, fmt, int(N), copy, opts, comm)
        data["runs"].append(result)
        records.log(f"  {problem} {fmt} n={result['n']}: apply {result['apply_s'] * 1e3:.3f} ms = "
                    f"{result['time_ratio']:.1f} MatMult, bytes {result['bytes_ratio']:.1f}x A's, "
                    f"{result['apply_bandwidth'] / 1e9:.2f} GB/s = "
                    f"{result['fraction_of_copy']:.2f} of copy (MatMult "
                    f"{result['matmult_fraction_of_copy']:.2f})")
        results.save()
    results.finish(plot)


if __name__ == "__main__":
    main()
