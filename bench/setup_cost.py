"""Set-up cost of greenpc broken down by phase, and its growth with the number of points.

    python bench/setup_cost.py                                  # bench/results/setup_cost.json + .png
    python bench/setup_cost.py -setup_sizes 1024,4096 -setup_formats sparse

For each kernel (every shipped model on its own problem, and the closed-form poisson2d Green's function
on poisson2d), format (sparse, H-matrix) and number of points n (4096 to 262144: N = n in 1D, N^2 = n
in 2D), one KSP set-up with greenpc alone. The phases are timed by wrapping greenpc's functions for the
duration of the set-up, each phase's time exclusive of the phases it calls:

- kernel evaluation: ``Kernel.__call__`` (count, and evaluations per second of kernel time);
- tree and partition: the cluster trees and block partition (``hmatrix.plan``, made once for the memory
  estimate and reused by the build) or, for the sparse format, the KD-tree neighbour search;
- rank sampling: ACA on a few far blocks, when the memory bound at the rank cap passes the limit;
- compression: the low-rank compressors (ACA / Nystrom) outside their kernel calls;
- block gathering: laying the blocks' coordinates end to end for batched kernel calls;
- PETSc assembly: the MatMPIAIJ (``aij_from_coo``, or ``aij_from_blocks`` for the H-matrix);
- a posteriori check, scale and diagonal fit, geometry layout, and the rest ("other").

PETSc's own log events (GreenPCSetUp, GreenPCKernelEval, GreenPCAssembly, GreenPCFit) are recorded
beside them. The growth exponent p of set-up time ~ n^p and of stored entries ~ n^p is fitted in
log-log over the sizes that ran (and between the two largest). A configuration whose estimated kernel
time exceeds ``-setup_budget`` seconds is skipped with the estimate (see ``candidates``).
"""
import os
import sys
import time
from collections import defaultdict

import petsc4py

petsc4py.init(sys.argv)
from petsc4py import PETSc  # noqa: E402

import candidates  # noqa: E402
import machine  # noqa: E402
import records  # noqa: E402
from greenpc import models, problems  # noqa: E402
from greenpc.options import Option, non_negative, read  # noqa: E402

SPECS = (
    Option("kernels", str, "auto", "problems whose greenpc kernel is measured (auto: every shipped "
           "model's problem, and poisson2d with its closed-form kernel)"),
    Option("sizes", str, "4096,16384,65536,262144", "numbers of points n (a square in 2D)"),
    Option("formats", str, "sparse,hmatrix,hmatrix-cheb", "greenpc formats (candidates.FORMATS)"),
    Option("budget", float, 120.0, "skip a configuration whose estimated kernel time is above this "
           "many seconds", check=non_negative),
    Option("out", str, records.RESULTS, "folder of the JSON results and the plot"),
)
EVENTS = ("SetUp", "KernelEval", "Assembly", "Fit")


class Phases:
    """Exclusive wall time of named phases, measured by wrapping functions while active."""

    def __init__(self):
        self.seconds, self.calls = defaultdict(float), defaultdict(int)
        self.stack, self.originals = [], []

    def wrap(self, owner, attribute, phase):
        original = getattr(owner, attribute)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            self.stack.append(0.0)
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                inner = self.stack.pop()
                self.seconds[phase] += elapsed - inner
                self.calls[phase] += 1
                if self.stack:
                    self.stack[-1] += elapsed

        self.originals.append((owner, attribute, original))
        setattr(owner, attribute, timed)

    def __enter__(self):
        from greenpc.hmatrix import batch, compress
        from greenpc.hmatrix import hmatrix as hmatrix_module
        from greenpc.hmatrix import petsc as hmatrix_petsc
        from greenpc.kernels import base
        from greenpc.pc import context, formats, scaling

        self.wrap(base.Kernel, "__call__", "kernel evaluation")
        self.wrap(hmatrix_module, "plan", "tree and partition")
        self.wrap(hmatrix_module, "sample_ranks", "rank sampling")
        self.wrap(formats, "sparse_pattern", "tree and partition")
        for compressor in (compress.ACA, compress.Nystrom):
            self.wrap(compressor, "compress", "compression")
        self.wrap(batch.BlockEvaluator, "__call__", "block gathering")
        self.wrap(hmatrix_module.HMatrix, "check", "a posteriori check")
        self.wrap(formats, "aij_from_coo", "PETSc assembly")
        self.wrap(hmatrix_petsc, "aij_from_blocks", "PETSc assembly")
        self.wrap(context, "fit_inputs", "scale and diagonal fit")
        self.wrap(scaling, "fit", "scale and diagonal fit")
        self.wrap(context, "make_layout", "geometry layout")
        return self

    def __exit__(self, *exc):
        for owner, attribute, original in reversed(self.originals):
            setattr(owner, attribute, original)
        self.originals = []


def event_times():
    return {name: PETSc.Log.Event(f"GreenPC{name}").getPerfInfo()["time"] for name in EVENTS}


def kernels_to_measure(text):
    if text != "auto":
        return records.names(text)
    # a model of a medium (helmholtz1d-gauss) is its preset's family with other parameters: measured
    # through its preset's own model
    return [name for name in models.names() if name in problems.names()] + ["poisson2d"]


def measure(choice, fmt, N, comm):
    """One set-up on the N^d grid: phases, events, evaluations and storage."""
    mpi = comm.tompi4py()
    before = event_times()
    with Phases() as phases:
        ksp, A, da, grid, setup = candidates.set_up_greenpc(choice, fmt, N, comm)
    after = event_times()
    info = ksp.getPC().getPythonContext().summary()
    evaluations = mpi.allreduce(info["evaluations"])
    entries = mpi.allreduce(info["entries_local"])
    breakdown = dict(phases.seconds)
    breakdown["other"] = setup - sum(breakdown.values())
    kernel_s = breakdown.get("kernel evaluation", 0.0)
    result = {"n": grid.size, "N": N, "setup_s": setup,
              "phases_s": breakdown, "phase_calls": dict(phases.calls),
              "events_s": {k: after[k] - before[k] for k in EVENTS},
              "evaluations": evaluations,
              "evaluations_per_s": info["evaluations"] / kernel_s if kernel_s else None,
              "entries": entries, "entries_per_point": entries / grid.size,
              "bytes": mpi.allreduce(info["bytes_local"]),
              "preconditioned_residual": info["preconditioned_residual"]}
    result.update({k: info[k] for k in ("max_rank", "mean_rank", "leaf_size", "eta", "compressor")
                   if k in info})
    ksp.destroy()
    A.destroy()
    da.destroy()
    return result


def plot(path, data):
    plt = records.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(17, 5))
    bars = []
    for name, run in data["runs"].items():
        done = [r for r in run["sizes"] if "skipped" not in r]
        if not done:
            continue
        n = [r["n"] for r in done]
        p_time, p_entries = run["growth"]["setup_s"]["all"], run["growth"]["entries"]["all"]
        axes[0].plot(n, [r["setup_s"] for r in done], "-o", label=f"{name} (p = {p_time:.2f})"
                     if p_time is not None else name)
        axes[1].plot(n, [r["entries"] for r in done], "-o", label=f"{name} (p = {p_entries:.2f})"
                     if p_entries is not None else name)
        bars.append((f"{name}\nn={done[-1]['n']}", done[-1]["phases_s"]))
    for ax, ylabel in ((axes[0], "set-up time (s)"), (axes[1], "stored entries")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("points n")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    phases = sorted({p for _, b in bars for p in b})
    bottom = [0.0] * len(bars)
    for phase in phases:
        values = [max(b.get(phase, 0.0), 0.0) for _, b in bars]
        axes[2].bar(range(len(bars)), values, bottom=bottom, label=phase)
        bottom = [a + b for a, b in zip(bottom, values)]
    axes[2].set_xticks(range(len(bars)), [name for name, _ in bars], fontsize=6, rotation=30)
    axes[2].set_ylabel("seconds (largest n that ran)")
    axes[2].legend(fontsize=7)
    records.save_figure(fig, path, f"greenpc set-up: {machine.label(data['machine'])}")


def main():
    opts = read(SPECS, "setup_")
    comm = PETSc.COMM_WORLD
    PETSc.Log.begin()
    results = records.Results(os.path.join(opts["out"], "setup_cost.json"), opts, "set-up cost",
                              comm, runs={})
    data = results.data
    for problem in kernels_to_measure(opts["kernels"]):
        choice = candidates.KernelChoice(problem)
        speed = candidates.probe(choice.kernel(), comm)
        for fmt in records.names(opts["formats"]):
            name = f"{problem} {fmt}"
            run = {**choice.record(), "format": fmt, "compile_s": speed["compile_s"],
                   "probe_evaluations_per_s": speed["rate"], "sizes": []}
            data["runs"][name] = run
            for n in records.integers(opts["sizes"]):
                dim = choice.dim
                N = round(n ** (1.0 / dim))
                ok, estimate = candidates.affordable(fmt, dim, N, speed["rate"], comm.getSize(),
                                                     opts["budget"])
                if not ok:
                    run["sizes"].append({"n": N ** dim, "skipped": f"estimated kernel time "
                                         f"{estimate['estimated_kernel_s']:.0f} s > budget "
                                         f"{opts['budget']:g} s", **estimate})
                    records.log(f"  {name:>20s} n={N ** dim:7d}: skipped ({run['sizes'][-1]['skipped']})")
                    continue
                result = {**measure(choice, fmt, N, comm), **estimate}
                run["sizes"].append(result)
                top = sorted(result["phases_s"].items(), key=lambda kv: -kv[1])[:3]
                records.log(f"  {name:>20s} n={result['n']:7d}: set-up {result['setup_s']:7.2f} s, "
                            f"{result['evaluations']:.3g} evaluations "
                            f"({(result['evaluations_per_s'] or 0):.3g}/s), "
                            f"{result['entries_per_point']:.0f} entries/point; "
                            + ", ".join(f"{k} {v:.2f} s" for k, v in top))
                results.save()
            done = [r for r in run["sizes"] if "skipped" not in r]
            run["growth"] = {key: records.growth_exponent([r["n"] for r in done],
                                                          [r[key] for r in done])
                             for key in ("setup_s", "entries", "evaluations")}
            records.log(f"  {name:>20s}: growth exponent of set-up time "
                        f"{_fmt(run['growth']['setup_s']['all'])}, of stored entries "
                        f"{_fmt(run['growth']['entries']['all'])}")
    results.finish(plot)


def _fmt(value):
    return "n/a" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    main()
