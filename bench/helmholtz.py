"""Strongly indefinite Helmholtz problems: greenpc against every peer, iterations versus k2.

    python bench/helmholtz.py                                  # the whole study (about an hour here)
    python bench/helmholtz.py -helmholtz_k2 300,1000 -helmholtz_sweep_N 32 -helmholtz_sizes 32
    python bench/helmholtz.py -helmholtz_dim 1 -helmholtz_sweep_N 256 -helmholtz_sizes 1024,4096 \
        -helmholtz_profiles constant -helmholtz_out bench/results/helmholtz1d

For -lap u - k2 n^2(x) u = f on the unit square (preset ``helmholtz2d``) with n^2 constant, a Gaussian
inclusion (-gauss) or two layers (-layers), in the paper's protocol (FGMRES(50), rtol 1e-6, 3
right-hand sides), one matrix per case and in the same run: none, ILU(0), SOR, GAMG, classical AMG
(pyamg), GAMG on the shifted Laplacian -lap + k2 n^2 as preconditioning matrix, LU, and greenpc.

``-helmholtz_dim 1`` does the same for ``helmholtz1d`` on [0, 1] (where ILU(0) of the tridiagonal
matrix is exact, so the peers say little). greenpc runs twice per case: "greenpc" with the shipped
``helmholtzNd`` model when there is one, and "greenpc-exact" with the closed-form Green's function
(``-greenpc_kernel helmholtz2d`` or ``shifted1d``, constant k2 only): what the preconditioner does with an
exact continuous kernel - the best a learned model can reach - and how the H-matrix ranks grow with
k2. A case greenpc cannot run (no model, a medium the model was not trained for, no closed form) is
recorded as not run, with the reason.

Outputs in ``-helmholtz_out``: helmholtz.json, iterations_vs_k2.png (one panel per profile) and
README.md with the tables.
"""
import functools
import json
import os
import platform
import sys
import time

import petsc4py

petsc4py.init(sys.argv)
import numpy as np  # noqa: E402
from petsc4py import PETSc  # noqa: E402

from greenpc import models, problems  # noqa: E402
from greenpc.driver import (check_sweeps, compare, pushed_options, solve_with, sweep_counts,  # noqa: E402
                            variant_label)
from greenpc.options import Option, read  # noqa: E402
from greenpc.problems import dmda  # noqa: E402

SPECS = (
    Option("k2", str, "50,100,200,300,400,500,600,700,850,1000", "k2 values of the sweep"),
    Option("sweep_N", int, 64, "N of the iterations-versus-k2 sweep"),
    Option("sizes", str, "128,256", "N of the table at k2 = 300 and 1000"),
    Option("table_k2", str, "300,1000", "k2 values of the table"),
    Option("profiles", str, "constant,gauss,layers", "media: constant, gauss (Gaussian inclusion), "
           "layers (two layers)"),
    Option("gauss", float, 1.0, "amplitude of the Gaussian inclusion profile"),
    Option("layers", float, 0.5, "contrast of the layered profile"),
    Option("peers", str, "none,ilu,sor,gamg,amg,gamg-shifted,lu", "preconditioners beside greenpc"),
    Option("nrhs", int, 3, "right-hand sides per case"),
    Option("greenpc_max_points", int, 20000, "largest grid greenpc's closed-form stand-in is built "
           "for (its series costs about 10 us per entry here)"),
    Option("hmat_tol", float, 1e-4, "tolerance of greenpc's H-matrix"),
    Option("compressor", str, "aca", "greenpc's -greenpc_hmat_compressor (aca: what the committed results "
           "used; auto: the PC's default, chebyshev in 2D)"),
    Option("smoothing", str, "2", "numbers of SOR sweeps after the learned kernel's product also "
           "measured, on the same set-up (greenpc+sorN; empty: none)",
           check=check_sweeps),
    Option("out", str, "bench/results/helmholtz", "folder of the results"),
    Option("dim", int, 2, "1: helmholtz1d on [0, 1]; 2: helmholtz2d on the unit square"),
    Option("keep", bool, True, "keep the cases this run does not repeat from -helmholtz_out's earlier "
           "helmholtz.json (so a model trained later adds its medium to the study)"),
)
#: the media, in the order of the tables and plot panels
PROFILES = ("constant", "gauss", "layers")
#: the closed form of -lap - k2 (constant k2) in each dimension
CLOSED_FORM = {1: "shifted1d", 2: "helmholtz2d"}
GREENPC_LABELS = ("greenpc", "greenpc-exact")


def log(text):
    PETSc.Sys.Print(text)


def floats(text):
    return [float(v) for v in text.split(",") if v.strip()]


def profile_params(profile, opts, k2):
    """The preset's parameters for one medium."""
    amplitude = {"constant": {}, "gauss": {"gauss": opts["gauss"]}, "layers": {"layers": opts["layers"]}}
    if profile not in amplitude:
        raise ValueError(f"-helmholtz_profiles: unknown profile {profile!r}; choose constant, gauss "
                         "or layers")
    return {"k2": k2, **amplitude[profile]}


@functools.lru_cache(maxsize=None)
def fixed_params(model):
    """The fixed problem parameters a shipped model was trained with (read once per run)."""
    from greenpc import weights

    return weights.load(models.path(model)).problem["params"]


def shipped_model(dim, params):
    """(name, None) of the shipped helmholtz{dim}d model trained for this medium (helmholtz1d, or a
    variant such as helmholtz1d-gauss), or (None, why none)."""
    family = f"helmholtz{dim}d"
    medium = {k: v for k, v in params.items() if k != "k2"}
    shipped = [m for m in models.names() if m.split("-")[0] == family]
    for model in shipped:
        fixed = fixed_params(model)
        if all(fixed.get(k, 0.0) == v for k, v in medium.items()):
            return model, None
    return None, (f"no shipped {family} model for {medium}" if shipped else f"no shipped {family} model")


def greenpc_options(params, grid, opts, exact):
    """greenpc's options for one case, or (None, why not): the shipped model, or the closed form."""
    hmatrix = {"pc_type": "python", "pc_python_type": "greenpc.GreenPC", "greenpc_format": "hmatrix",
               "greenpc_hmat_tol": str(opts["hmat_tol"]), "greenpc_hmat_compressor": opts["compressor"]}
    if not exact:
        model, why = shipped_model(grid.dim, params)
        if model is None:
            return None, why
        return {**hmatrix, "greenpc_weights": model, "greenpc_param": f"k2={params['k2']:g}"}, \
            "greenpc (learned)"
    if set(params) != {"k2"}:
        return None, "no closed form for a heterogeneous medium"
    if grid.size > opts["greenpc_max_points"] and grid.dim > 1:
        return None, (f"closed form not built above {opts['greenpc_max_points']} points "
                      "(-helmholtz_greenpc_max_points)")
    return {**hmatrix, "greenpc_kernel": CLOSED_FORM[grid.dim], "greenpc_param": f"k2={params['k2']:g}"}, \
        "greenpc (closed form)"


def run_case(profile, N, k2, opts, comm):
    """Every peer and greenpc on one matrix; a dict label -> result."""
    problem = problems.get(f"helmholtz{opts['dim']}d")
    params = profile_params(profile, opts, k2)
    grid = problems.Grid(opts["dim"], N, "interior")
    values = problem.resolve(params)
    da, A = dmda.build(problem, grid, values, "operator", comm)
    seeds = list(range(opts["nrhs"]))
    results = compare(problem, grid, da, A, values, "operator",
                      [p for p in opts["peers"].split(",") if p], seeds, comm)
    for name in GREENPC_LABELS:
        settings, label = greenpc_options(params, grid, opts, exact=name == "greenpc-exact")
        if settings is None:
            results[name] = {"pc": name, "skipped": label}
        else:
            with pushed_options(settings):
                counts = sweep_counts(opts["smoothing"]) if name == "greenpc" else ()
                result = solve_with(A, da, grid, seeds, label, comm, smoothing=counts)
            results[name] = result
            for variant, run in result.pop("variants", {}).items():
                results[name + variant[len(label):]] = run
    A.destroy()
    da.destroy()
    line = "  ".join(f"{k} {cell(v)}" for k, v in results.items())
    log(f"{profile:8s} N={N:4d} k2={k2:6g}: {line}")
    return {"profile": profile, "N": N, "k2": k2, "params": params, "results": results}


def labels_of(opts):
    """Table and plot columns: the peers, greenpc, and greenpc with each number of sweeps."""
    return ([p for p in opts["peers"].split(",") if p] + list(GREENPC_LABELS)
            + [variant_label("greenpc", n) for n in sweep_counts(opts["smoothing"])])


def cell(result):
    """'12.3' (mean iterations), 'F' (not converged) or '-' (not run)."""
    if "skipped" in result:
        return "-"
    return f"{result['mean']:.1f}" if result["converged"] else "F"


def hmatrix_growth(cases):
    """Rank and storage of greenpc's H-matrix against k2 (constant medium, sweep size)."""
    rows = []
    for case, name in ((c, n) for c in cases for n in GREENPC_LABELS):
        run = case["results"].get(name, {})
        details = run.get("details") or {}
        if "skipped" in run or not details:
            continue
        # one rank: the local entries are all of them
        rows.append({"kernel": name, "k2": case["k2"], "N": case["N"], "rank_max": details["max_rank"],
                     "rank_mean": details["mean_rank"], "exact_rank": details.get("exact_rank", 0),
                     "entries_per_row":
                     details["entries_local"] / details["points"],
                     "compression": details["points"] ** 2 / details["entries_local"],
                     "evaluations": details["evaluations"],
                     "check_error": details.get("check_error"), "setup_s": run["setup_s"]})
    return rows


def plot(sweep, labels, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    profiles = sorted({c["profile"] for c in sweep}, key=PROFILES.index)
    fig, axes = plt.subplots(1, len(profiles), figsize=(5 * len(profiles), 4), squeeze=False)
    for ax, profile in zip(axes[0], profiles):
        cases = [c for c in sweep if c["profile"] == profile]
        k2 = [c["k2"] for c in cases]
        for label in labels:
            runs = [c["results"].get(label, {"skipped": True}) for c in cases]
            mean = [r["mean"] if "skipped" not in r and r["converged"] else np.nan for r in runs]
            if not np.all(np.isnan(mean)):
                name = runs[0].get("pc", label) if label not in GREENPC_LABELS else next(
                    (r["pc"] for r in runs if "skipped" not in r), label)
                ax.plot(k2, mean, "o-", label=name)
        ax.set(title=f"{profile} medium, N = {cases[0]['N']}", xlabel="k2",
               ylabel="FGMRES(50) iterations (mean of 3 rhs)", yscale="log")
        ax.text(0.02, 0.02, "missing point: not converged in 500 or not run",
                transform=ax.transAxes, fontsize=7)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(cases, labels):
    lines = ["| medium | N | k2 | " + " | ".join(labels) + " |",
             "|" + "---|" * (3 + len(labels))]
    for c in cases:
        kept = " *" if "date" in c else ""  # a case kept from an earlier run carries that run's date
        lines.append(f"| {c['profile']}{kept} | {c['N']} | {c['k2']:g} | "
                     + " | ".join(cell(c["results"].get(k, {"skipped": "not run"})) for k in labels)
                     + " |")
    return lines


def write_markdown(data, path):
    labels = labels_of({"smoothing": "", **data["options"]})
    greenpc_labels = sorted({c["results"][n].get("pc", "") for c in data["sweep"] + data["table"]
                             for n in GREENPC_LABELS if "skipped" not in c["results"][n]})
    lines = [f"# Helmholtz study, {data['options'].get('dim', 2)}D ({data['date']}, {data['machine']}, {data['ranks']} rank(s))", "",
             "Mean FGMRES(50) iterations to rtol 1e-6 over 3 right-hand sides; F: not converged in 500; "
             "-: not run (reasons in helmholtz.json).",
             f"greenpc here is: {', '.join(greenpc_labels) or 'not run'}; greenpc+sorN: the learned "
             "greenpc's same set-up with N symmetric SOR sweeps after each kernel product "
             "(-greenpc_smooth_its N).", ""]
    earlier = sorted({c["date"] for c in data["sweep"] + data["table"] if "date" in c})
    if earlier:
        lines += [f"Rows marked * were kept from an earlier run ({', '.join(earlier)}; -helmholtz_keep).", ""]
    lines += [f"## Iterations versus k2 (N = {data['options']['sweep_N']})", ""]
    lines += table(data["sweep"], labels)
    lines += ["", "![iterations versus k2](iterations_vs_k2.png)", "", "## Larger grids", ""]
    lines += table(data["table"], labels)
    lines += ["", "## greenpc's H-matrix against k2 (constant medium)", "",
              "Ranks of the compressed blocks; a learned model's resonant modes are stored beside them "
              "as one exact term of the rank given (-greenpc_hmat_exact_split; 0: none).", "",
              "| kernel | N | k2 | rank max | rank mean | exact rank | entries/row | compression | check error | set-up s |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in data["hmatrix_growth"]:
        lines.append(f"| {r.get('kernel', 'greenpc')} | {r['N']} | {r['k2']:g} | {r['rank_max']} | {r['rank_mean']:.1f} | "
                     f"{r.get('exact_rank', 0)} | "
                     f"{r['entries_per_row']:.0f} | {r['compression']:.2f}x | {r['check_error'] or float('nan'):.1e} | "
                     f"{r['setup_s']:.0f} |")
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")


def earlier_cases(opts, runs):
    """(sweep, table): the cases of an earlier run in -helmholtz_out that this run does not repeat
    (``runs``: the (profile, N, k2) it runs), when -helmholtz_keep and that run had the same dimension,
    sweep size, peers and right-hand sides; empty lists otherwise. Each kept case carries its run's date."""
    path = os.path.join(opts["out"], "helmholtz.json")
    if not opts["keep"] or not os.path.exists(path):
        return [], []
    with open(path) as handle:
        old = json.load(handle)
    defaults = {spec.name: spec.default for spec in SPECS}  # a file older than an option has its default
    same = all(old["options"].get(k, defaults[k]) == opts[k] for k in ("dim", "sweep_N", "peers", "nrhs"))
    if not same:
        log(f"not keeping {path}: its -helmholtz_dim, _sweep_N, _peers or _nrhs differ from this run's")
        return [], []
    sweep, table = ([{"date": old["date"], **c} for c in old[part]
                     if (c["profile"], c["N"], c["k2"]) not in runs] for part in ("sweep", "table"))
    if sweep or table:
        log(f"keeping {len(sweep) + len(table)} cases of {path} that this run does not repeat")
    return sweep, table


def main():
    opts = read(SPECS, prefix="helmholtz_")
    comm = PETSc.COMM_WORLD
    if comm.getSize() != 1:
        raise SystemExit("bench/helmholtz.py runs on one rank (its storage figures are per rank)")
    profiles = [p for p in opts["profiles"].split(",") if p]
    sweep_runs = [(p, opts["sweep_N"], k2) for p in profiles for k2 in floats(opts["k2"])]
    table_runs = [(p, N, k2) for p in profiles for N in map(int, floats(opts["sizes"]))
                  for k2 in floats(opts["table_k2"])]
    sweep = [run_case(p, N, k2, opts, comm) for p, N, k2 in sweep_runs]
    big = [run_case(p, N, k2, opts, comm) for p, N, k2 in table_runs]
    # read at the end, so that runs of other media in the same folder meanwhile are kept too
    kept_sweep, kept_table = earlier_cases(opts, set(sweep_runs + table_runs))
    sweep = sorted(kept_sweep + sweep, key=lambda c: (PROFILES.index(c["profile"]), c["k2"]))
    big = sorted(kept_table + big, key=lambda c: (PROFILES.index(c["profile"]), c["N"], c["k2"]))
    data = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.node()} "
            f"({os.cpu_count()} cores)", "ranks": comm.getSize(), "options": opts,
            "sweep": sweep, "table": big,
            "hmatrix_growth": hmatrix_growth([c for c in sweep + big if c["profile"] == "constant"])}
    if comm.getRank() == 0:
        os.makedirs(opts["out"], exist_ok=True)
        with open(os.path.join(opts["out"], "helmholtz.json"), "w") as handle:
            json.dump(data, handle, indent=1)
        labels = labels_of(opts)
        plot(sweep, labels, os.path.join(opts["out"], "iterations_vs_k2.png"))
        write_markdown(data, os.path.join(opts["out"], "README.md"))
        log(f"results in {opts['out']}")


if __name__ == "__main__":
    main()
