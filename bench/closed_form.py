"""greenpc with exact (closed-form) kernels: iterations versus N, both problem forms, any number of ranks.

    python bench/closed_form.py                       # bench/results/closed_form/np1.json
    mpiexec -n 2 python bench/closed_form.py          # np2.json
    python bench/closed_form.py -closed_report        # the table of every npK.json: README.md

The reference the learned kernels are judged against: with the exact Green's function the dense format
is (up to the discretization error) the inverse of the operator, so its iteration counts are what the
PC, the scale and diagonal fits and the layout give on their own. poisson1d, shifted1d (k2 = 50) and
poisson2d, in the paper's protocol, dense and sparse, interior unknowns and boundary rows kept.
"""
import glob
import json
import os
import sys
import time

import petsc4py

petsc4py.init(sys.argv)
from petsc4py import PETSc  # noqa: E402

from greenpc import problems  # noqa: E402
from greenpc.driver import pushed_options, solve_with  # noqa: E402
from greenpc.options import Option, read  # noqa: E402
from greenpc.problems import dmda  # noqa: E402

SPECS = (
    Option("sizes_1d", str, "32,64,128,256,512,1024,2048", "N of the 1D problems"),
    Option("sizes_2d", str, "16,32,48,64,96", "N of poisson2d"),
    Option("formats", str, "dense,sparse", "greenpc formats"),
    Option("forms", str, "interior,boundary", "problem forms"),
    Option("out", str, "bench/results/closed_form", "folder of the results"),
    Option("report", bool, False, "only merge the npK.json files into README.md"),
)
CASES = (("poisson1d", "poisson1d", {}), ("shifted1d", "shifted1d", {"k2": 50.0}),
         ("poisson2d", "poisson2d", {}))


def run(opts, comm):
    results = []
    for name, kernel, params in CASES:
        problem = problems.get(name)
        sizes = opts["sizes_1d"] if problem.dim == 1 else opts["sizes_2d"]
        for form in opts["forms"].split(","):
            for N in map(int, sizes.split(",")):
                grid = problems.Grid(problem.dim, N, form)
                da, A = dmda.build(problem, grid, params, "operator", comm)
                row = {"problem": name, "form": form, "N": N}
                for fmt in opts["formats"].split(","):
                    settings = {"pc_type": "python", "pc_python_type": "greenpc.GreenPC",
                                "greenpc_kernel": kernel, "greenpc_format": fmt,
                                "greenpc_dense_max": str(grid.size)}
                    if params:
                        settings["greenpc_param"] = ",".join(f"{k}={v:g}" for k, v in params.items())
                    with pushed_options(settings):
                        result = solve_with(A, da, grid, [0, 1, 2], fmt, comm)
                    row[fmt] = {k: result[k] for k in ("iterations", "converged", "mean", "setup_s")}
                A.destroy()
                da.destroy()
                PETSc.Sys.Print(f"{name:9s} {form:8s} N={N:5d} " + "  ".join(
                    f"{fmt} {cell(row[fmt])}" for fmt in opts["formats"].split(",")))
                results.append(row)
    return results


def cell(run):
    return f"{max(run['iterations'])}" if run["converged"] else "F"


def report(folder):
    """README.md: for each case the largest iteration count over 3 right-hand sides, per rank count."""
    runs = {}
    for path in sorted(glob.glob(os.path.join(folder, "np*.json"))):
        data = json.load(open(path))
        runs[data["ranks"]] = data
    ranks = sorted(runs)
    formats = runs[ranks[0]]["formats"]
    lines = [f"# greenpc with closed-form kernels ({runs[ranks[0]]['date']})", "",
             "Largest FGMRES(50) iteration count over 3 right-hand sides (rtol 1e-6); F: not converged "
             "in 500. Columns: format on K ranks.", "",
             "| problem | form | N | " + " | ".join(f"{f} np{k}" for f in formats for k in ranks) + " |",
             "|" + "---|" * (3 + len(formats) * len(ranks))]
    spread = dict.fromkeys(formats, 0)
    for i, row in enumerate(runs[ranks[0]]["results"]):
        cells = []
        for fmt in formats:
            counts = [runs[k]["results"][i][fmt] for k in ranks]
            cells += [cell(c) for c in counts]
            converged = [max(c["iterations"]) for c in counts if c["converged"]]
            if len(converged) == len(counts):
                spread[fmt] = max(spread[fmt], max(converged) - min(converged))
        lines.append(f"| {row['problem']} | {row['form']} | {row['N']} | " + " | ".join(cells) + " |")
    lines += ["", "Largest difference between rank counts where all converged: " + ", ".join(
        f"{fmt} {value}" for fmt, value in spread.items()) + " iteration(s)."]
    with open(os.path.join(folder, "README.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")


def main():
    opts = read(SPECS, prefix="closed_")
    comm = PETSc.COMM_WORLD
    if opts["report"]:
        if comm.getRank() == 0:
            report(opts["out"])
        return
    results = run(opts, comm)
    if comm.getRank() == 0:
        os.makedirs(opts["out"], exist_ok=True)
        data = {"date": time.strftime("%Y-%m-%d %H:%M"), "ranks": comm.getSize(),
                "formats": opts["formats"].split(","), "results": results}
        with open(os.path.join(opts["out"], f"np{comm.getSize()}.json"), "w") as handle:
            json.dump(data, handle, indent=1)


if __name__ == "__main__":
    main()
