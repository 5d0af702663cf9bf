"""Time to solution: greenpc's formats beside PETSc's preconditioners and classical AMG, one run each.

    python bench/solve.py                                    # 1 rank: bench/results/solve_np1.json
    mpiexec -n 2 python bench/solve.py                       # 2 ranks: solve_np2.json
    python bench/solve.py -solve_problems react2d -solve_sizes 32,64 -solve_budget 10

For every problem and N, one matrix and one set of right-hand sides (the paper's protocol: FGMRES(50),
relative tolerance 1e-6, at most 500 iterations, 3 right-hand sides, zero initial guess) are solved with
each peer (none, Jacobi, SOR, ILU(0), GAMG, pyamg's classical AMG as one V-cycle, LU; on several ranks
ILU is block Jacobi with ILU(0) blocks, LU is redundant and AMG is gathered to rank 0) and with greenpc
in each format. Time to solution is the KSP set-up plus the solves of all right-hand sides, training
excluded; the one-time compilation of a learned kernel happens in a warm-up before any timing and is
recorded apart (JAX also caches it across runs). greenpc's ratio to the fastest converged peer, and to
each peer, is recorded per problem and N.

A greenpc format whose estimated kernel time on one core exceeds ``-solve_budget`` seconds is skipped
with its estimate (``candidates.affordable``; one core's time, so 1 and 2 ranks run the same formats),
as is one above its largest N (``-solve_largest``); with ``-solve_skip_failed`` (default) a
preconditioner that did not converge at a smaller N is not run at the larger ones (it is recorded as
skipped, reason given).
Problems without a shipped model use a closed-form stand-in kernel, labelled in every output.
With ``-solve_smoothing 2`` each greenpc format is solved again after two SOR sweeps per kernel
product on the same set-up (``greenpc-sparse+sor2``; its time is the shared set-up plus its own solves).
"""
import os
import sys

import petsc4py

petsc4py.init(sys.argv)
from petsc4py import PETSc  # noqa: E402

import candidates  # noqa: E402
import machine  # noqa: E402
import records  # noqa: E402
from greenpc import problems  # noqa: E402
from greenpc.driver import (check_sweeps, peer_options, pushed_options, solve_with,  # noqa: E402
                            sweep_counts, variant_label, with_variants)
from greenpc.options import Option, non_negative, positive, read  # noqa: E402
from greenpc.problems import dmda  # noqa: E402

SPECS = (
    Option("problems", str, "conv2d,react2d,rotlap2d", "problems (presets) to solve"),
    Option("sizes", str, "128,256,512", "N: interior points per direction"),
    Option("peers", str, "none,jacobi,sor,ilu,gamg,amg,lu", "preconditioners beside greenpc"),
    Option("formats", str, "dense,sparse,hmatrix,hmatrix-cheb", "greenpc formats (candidates.FORMATS)"),
    Option("smoothing", str, "", "SOR sweep counts: each greenpc format is solved again with that many "
           "symmetric SOR sweeps after each kernel product, on the same set-up (greenpc-FORMAT+sorN, "
           "-greenpc_smooth_its; e.g. 2)", check=check_sweeps),
    Option("nrhs", int, 3, "right-hand sides per solve", check=positive),
    Option("budget", float, 60.0, "skip a greenpc format whose estimated kernel time per set-up on one "
           "core is above this many seconds", check=non_negative),
    Option("largest", str, "dense:64,hmatrix:128", "largest N of a greenpc format (FORMAT:N, comma "
           "separated): the budget's estimate takes ACA's ranks from the plan, and the learned kernels "
           "need more (conv2d at N = 128: 43 s estimated, 212 s taken)"),
    Option("skip_failed", bool, True, "do not run at larger N what failed to converge at a smaller N"),
    Option("out", str, records.RESULTS, "folder of the JSON results and the plot"),
    Option("name", str, "", "file name stem (default solve_npRANKS)"),
)
SCALARS = (int, float, str, bool)


def trimmed(result):
    keep = ("iterations", "reasons", "relative_residuals", "converged", "mean", "setup_s",
            "solve_s", "total_s")
    out = {k: result[k] for k in keep}
    out["details"] = {k: v for k, v in result["details"].items() if isinstance(v, SCALARS)}
    return out


def warm_up(comm, peers, choice):
    """Each preconditioner once on a tiny grid: imports and first-call costs stay out of the timings."""
    preset = problems.get(choice.problem)
    grid = problems.Grid(preset.dim, 8)
    da, A = dmda.build(preset, grid, None, "operator", comm)
    configurations = [peer_options(p, comm.getSize()) for p in peers]
    configurations.append(choice.pc_options("sparse"))
    for options in configurations:
        with pushed_options(options):
            solve_with(A, da, grid, [0], "warm-up", comm)
    A.destroy()
    da.destroy()


def ratios(row, peers, formats):
    """greenpc's time to solution over the fastest converged peer and over each peer."""
    converged = {p: row[p]["total_s"] for p in peers if p in row and row[p].get("converged")}
    best = min(converged, key=converged.get) if converged else None
    out = {"best_peer": best, "best_peer_total_s": converged.get(best)}
    for fmt in formats:
        run = row.get(f"greenpc-{fmt}")
        if not run or not run.get("converged"):
            out[fmt] = None
            continue
        out[fmt] = {"to_best": run["total_s"] / converged[best] if best else None,
                    "to_each": {p: run["total_s"] / t for p, t in converged.items()}}
    return out


def plot(path, data):
    plt = records.pyplot()
    names = list(data["runs"])
    fig, axes = plt.subplots(2, len(names), figsize=(5.5 * len(names), 7.5), squeeze=False)
    for column, problem in enumerate(names):
        rows = data["runs"][problem]
        sizes = sorted(rows, key=int)
        labels = list(dict.fromkeys(label for n in sizes for label in rows[n]["results"]))
        for label in labels:
            points = [(int(n), rows[n]["results"].get(label)) for n in sizes]
            points = [(n, r) for n, r in points if r and "skipped" not in r]
            if not points:
                continue
            style = "-o" if label.startswith("greenpc") else "--s"
            for row, key in ((0, "total_s"), (1, "mean")):
                ok = [(n, r[key]) for n, r in points if r["converged"]]
                failed = [(n, r[key]) for n, r in points if not r["converged"]]
                line, = axes[row][column].plot([n for n, _ in ok], [v for _, v in ok], style,
                                               label=label, markersize=4)
                if failed:
                    axes[row][column].plot([n for n, _ in failed], [v for _, v in failed], "x",
                                           color=line.get_color(), markersize=8)
        stand_in = " (greenpc: stand-in kernel)" if data["kernels"][problem]["stand_in"] else ""
        axes[0][column].set_title(problem + stand_in, fontsize=9)
        for row, ylabel in ((0, "set-up + solve (s)"), (1, "FGMRES(50) iterations (x: failed)")):
            ax = axes[row][column]
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("N")
            ax.set_ylabel(ylabel)
        axes[0][column].legend(fontsize=7)
    records.save_figure(fig, path, f"Time to solution on {data['machine']['ranks']} rank(s): "
                                   f"{machine.label(data['machine'])}")


def largest_sizes(text):
    """{format: largest N} from -solve_largest's FORMAT:N,..."""
    out = {}
    for item in records.names(text):
        fmt, _, value = item.partition(":")
        if fmt not in candidates.FORMATS or not value.isdigit():
            raise ValueError(f"-solve_largest: {item!r} is not FORMAT:N with FORMAT one of "
                             f"{', '.join(candidates.FORMATS)}")
        out[fmt] = int(value)
    return out


def main():
    opts = read(SPECS, "solve_")
    comm = PETSc.COMM_WORLD
    size = comm.getSize()
    peers, formats = records.names(opts["peers"]), records.names(opts["formats"])
    smoothing = sweep_counts(opts["smoothing"])
    for fmt in formats:
        if fmt not in candidates.FORMATS:
            raise ValueError(f"-solve_formats: unknown format {fmt!r}; choose from "
                             f"{', '.join(candidates.FORMATS)}")
    largest = largest_sizes(opts["largest"])
    stem = opts["name"] or f"solve_np{size}"
    results = records.Results(
        os.path.join(opts["out"], stem + ".json"), opts, "time to solution", comm,
        protocol="FGMRES(50), rtol 1e-6, max 500 iterations, zero initial guess, "
                 f"{opts['nrhs']} right-hand sides uniform in [-0.5, 0.5]",
        time_to_solution="KSP set-up + all solves (training excluded; JIT compile apart)",
        kernels={}, runs={})
    data = results.data
    seeds = list(range(opts["nrhs"]))
    for problem in records.names(opts["problems"]):
        preset = problems.get(problem)
        choice = candidates.KernelChoice(problem)
        warm_up(comm, peers, choice)
        speed = candidates.probe(choice.kernel(), comm)
        data["kernels"][problem] = {**choice.record(), "evaluations_per_s_per_rank": speed["rate"],
                                    "compile_s": speed["compile_s"]}
        records.log(f"{problem}: greenpc kernel {choice.name}, {speed['rate']:.3g} evaluations/s "
                    f"per rank (compile {speed['compile_s']:.1f} s, excluded)")
        failed, runs = set(), {}
        data["runs"][problem] = runs
        for N in records.integers(opts["sizes"]):
            grid = problems.Grid(preset.dim, N)
            da, A = dmda.build(preset, grid, None, "operator", comm)
            row = {}
            candidates_here = [(p, peer_options(p, size), None) for p in peers]
            for fmt in formats:
                ok, estimate = candidates.affordable(fmt, preset.dim, N, speed["rate"], 1,
                                                     opts["budget"])
                if N > largest.get(fmt, N):
                    ok, estimate = False, {**estimate, "skipped": f"N > {largest[fmt]} (-solve_largest)"}
                candidates_here.append((f"greenpc-{fmt}", choice.pc_options(fmt) if ok else None,
                                        estimate))
            for label, options, estimate in candidates_here:
                sweeps = smoothing if label.startswith("greenpc-") else []
                labels = [label] + [variant_label(label, its) for its in sweeps]
                if options is None:
                    row[label] = {"skipped": f"estimated kernel time {estimate['estimated_kernel_s']:.0f}"
                                             f" s > budget {opts['budget']:g} s", **estimate}
                elif opts["skip_failed"] and set(labels) <= failed:
                    row[label] = {"skipped": "did not converge at a smaller N"}
                else:
                    with pushed_options(options):
                        solved = solve_with(A, da, grid, seeds, label, comm, smoothing=sweeps)
                    for name, result in with_variants({label: solved}).items():
                        row[name] = {**trimmed(result), **(estimate or {})}
                        if not row[name]["converged"]:
                            failed.add(name)
                for name in (n for n in labels if n in row):
                    records.log(line(problem, N, name, row[name]))
            variants = [label[len("greenpc-"):] for label in row if label.startswith("greenpc-")]
            runs[str(N)] = {"unknowns": grid.size, "results": row,
                            "ratios": ratios(row, peers, variants)}
            for fmt in variants:
                r = runs[str(N)]["ratios"][fmt]
                if r and r["to_best"]:
                    records.log(f"  {problem} N={N} greenpc-{fmt} / best peer "
                                f"({runs[str(N)]['ratios']['best_peer']}): {r['to_best']:.2f}")
            A.destroy()
            da.destroy()
            results.save()
    results.finish(plot)


def line(problem, N, label, result):
    if "skipped" in result:
        return f"  {problem} N={N:4d} {label:>16s}: skipped ({result['skipped']})"
    its = " ".join(str(i) if r > 0 else f"F{i}" for i, r in zip(result["iterations"],
                                                                 result["reasons"]))
    return (f"  {problem} N={N:4d} {label:>16s}: its {its:<14s} set-up {result['setup_s']:7.3f} s"
            f"  solve {result['solve_s']:7.3f} s  total {result['total_s']:7.3f} s")


if __name__ == "__main__":
    main()
