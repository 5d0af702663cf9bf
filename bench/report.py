"""The performance report, generated from the benchmarks' JSON results.

    python bench/report.py                    # what `make bench` runs last: bench/results/README.md

Reads whatever ``-report_results`` (bench/results) holds (solve_np*.json, setup_cost.json,
apply_np*.json, kernel_flops.json, training.json), states each target of issue 9 as met or not with its
measured number, and writes the tables as README.md in the same folder, beside the plots it shows.
Every table names the machine, the date, and whether the machine was busy with other work while it ran.
"""
import glob
import os
import sys

import petsc4py

petsc4py.init(sys.argv)
import records  # noqa: E402
from greenpc.options import Option, read  # noqa: E402

TITLE = "# greenpc performance (`make bench`)"
TARGETS = {"kernel_fraction": 0.3, "growth": 1.15, "bandwidth_fraction": 0.5, "amg_ratio": 10.0}


def read_results(folder):
    found = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem.split("_")[0] in ("solve", "setup", "apply", "kernel", "training", "two"):
            found[stem] = records.load(path)
    return found


def machine_line(data):
    m = data.get("machine", {})
    busy = (f"**disturbed**: load average {m.get('load_average_1min', 0):.1f} on "
            f"{m.get('cores')} cores when it started" if m.get("disturbed") else "quiet machine")
    return (f"{m.get('date', '?')}, {m.get('cpu', '?')}, {m.get('cores', '?')} cores, "
            f"{m.get('ranks', '?')} MPI rank(s), {busy}; {data.get('seconds', 0):.0f} s")


def verdict(ok):
    return "met" if ok else "**not met**"


def number(value, digits=2):
    return "-" if value is None else f"{value:.{digits}f}"


def targets(results):
    """Rows (target, measured, verdict) of issue 9's targets."""
    rows = []
    flops = results.get("kernel_flops")
    if flops and flops["runs"]:
        best = max(flops["runs"], key=lambda r: r["fraction_of_matmul"])
        worst = min(flops["runs"], key=lambda r: r["fraction_of_matmul"])
        rows.append(("kernel evaluation >= 30% of dense matmul FLOP/s",
                     f"{worst['fraction_of_matmul']:.1%} ({worst['model']} {worst['precision']}) to "
                     f"{best['fraction_of_matmul']:.1%} ({best['model']} {best['precision']}) end to "
                     f"end; compute only up to "
                     f"{max(r['compute_fraction_of_matmul'] for r in flops['runs']):.1%}",
                     verdict(worst["fraction_of_matmul"] >= TARGETS["kernel_fraction"])))
    setup = results.get("setup_cost")
    if setup:
        grown = [(name, run["growth"]["setup_s"]["all"]) for name, run in setup["runs"].items()
                 if run.get("growth", {}).get("setup_s", {}).get("all") is not None]
        if grown:
            text = ", ".join(f"{name} {p:.2f}" for name, p in grown)
            rows.append(("set-up growth exponent <= 1.15", text,
                         verdict(all(p <= TARGETS["growth"] for _, p in grown))))
    applies = [(data["machine"]["ranks"], r) for stem, data in results.items()
               if stem.startswith("apply_") for r in data["runs"]]
    if applies:
        text = ", ".join(f"{r['problem']} {r.get('config', r['format'])} n={r['n']} on {ranks}: "
                         f"{r['fraction_of_copy']:.2f}" for ranks, r in applies)
        rows.append(("greenpc apply >= 50% of copy bandwidth", text,
                     verdict(all(r["fraction_of_copy"] >= TARGETS["bandwidth_fraction"]
                                 for _, r in applies))))
    for stem, data in sorted(results.items()):
        if not stem.startswith("solve_"):
            continue
        # the target is N=256; every N that ran is reported
        for problem, n, row in ((p, n, row) for p in ("conv2d", "react2d")
                                for n, row in sorted(data["runs"].get(p, {}).items(),
                                                     key=lambda item: int(item[0]))):
            amg = row["results"].get("amg", {})
            stand_in = " (stand-in kernel)" if data["kernels"][problem]["stand_in"] else ""
            ratios = {label: run["total_s"] / amg["total_s"] for label, run in row["results"].items()
                      if label.startswith("greenpc") and run.get("converged")}
            if not amg.get("converged"):
                text, ok = "classical AMG did not run or converge", False
            elif ratios:
                best = min(ratios, key=ratios.get)
                text = f"{best} {ratios[best]:.1f}x AMG's time{stand_in}"
                ok = ratios[best] <= TARGETS["amg_ratio"]
            else:
                text, ok = f"no greenpc format ran (kernel-time budget) and converged{stand_in}", False
            rows.append((f"greenpc within 10x of classical AMG, {problem} N={n}, "
                         f"{data['machine']['ranks']} rank(s)", text,
                         verdict(ok) + (" with a stand-in kernel" if ok and stand_in else "")))
    return rows


def solve_tables(stem, data):
    lines = [f"**Time to solution, {data['machine']['ranks']} rank(s)** ({machine_line(data)}); "
             f"{data['protocol']}. Each cell: iterations (mean) / set-up + solve seconds; F = not "
             "converged in 500 iterations; skipped configurations say why in the JSON. "
             f"![time to solution]({stem}.png)"]
    compressors = {}
    for rows in data["runs"].values():
        for row in rows.values():
            for label, run in row["results"].items():
                details = run.get("details") or {}
                if details.get("compressor") and "+" not in label:
                    order = f" p = {details['order']}" if details.get("order") else ""
                    compressors[label] = f"{label} {details['compressor']}{order}, eta {details['eta']:g}"
    if compressors:
        lines += ["", "H-matrix configurations: " + "; ".join(compressors[k] for k in sorted(compressors))
                  + " (the PC's 2D default since 2026-12-02: Chebyshev, p = 4, eta 1.5)."]
    for problem, rows in data["runs"].items():
        kernel = data["kernels"][problem]["kernel"]
        labels = list(dict.fromkeys(label for r in rows.values() for label in r["results"]))
        lines += ["", f"*{problem}*, greenpc kernel: {kernel}", "",
                  "| N | " + " | ".join(labels) + " | greenpc / best peer |",
                  "|---|" + "---|" * (len(labels) + 1)]
        for n in sorted(rows, key=int):
            cells = []
            for label in labels:
                run = rows[n]["results"].get(label)
                if run is None or "skipped" in run:
                    cells.append("skipped")
                elif not run["converged"]:
                    cells.append(f"F / {run['total_s']:.2f}")
                else:
                    cells.append(f"{run['mean']:.0f} / {run['total_s']:.3g}")
            ratios = rows[n]["ratios"]
            best = ", ".join(f"{fmt} {r['to_best']:.1f}x" for fmt, r in ratios.items()
                             if isinstance(r, dict) and r.get("to_best"))
            cells.append(f"{best} ({ratios['best_peer']})" if best else "-")
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return lines


def setup_table(data):
    lines = [f"**Set-up cost** ({machine_line(data)}). Phases in seconds, each exclusive of the "
             "phases it calls; p = fitted growth exponent over the sizes that ran. "
             "![set-up](setup_cost.png)", "",
             "| kernel, format | n | set-up s | kernel evaluations | evaluations/s | kernel s | "
             "tree+partition s | compression s | PETSc assembly s | other s | entries/point |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, run in data["runs"].items():
        stand_in = " (stand-in)" if run.get("stand_in") else ""
        for r in run["sizes"]:
            if "skipped" in r:
                lines.append(f"| {name}{stand_in} | {r['n']} | skipped: {r['skipped']} |"
                             + " |" * 8)
                continue
            phases = r["phases_s"]
            lines.append(
                f"| {name}{stand_in} | {r['n']} | {r['setup_s']:.2f} | {r['evaluations']:.3g} | "
                f"{(r['evaluations_per_s'] or 0):.3g} | {phases.get('kernel evaluation', 0):.2f} | "
                f"{phases.get('tree and partition', 0):.2f} | {phases.get('compression', 0):.2f} | "
                f"{phases.get('PETSc assembly', 0):.2f} | "
                f"{r['setup_s'] - sum(phases.get(k, 0) for k in ('kernel evaluation', 'tree and partition', 'compression', 'PETSc assembly')):.2f} | "
                f"{r['entries_per_point']:.0f} |")
        growth = run.get("growth", {})
        lines.append(f"| {name}{stand_in} | p | {number(growth.get('setup_s', {}).get('all'))} | "
                     f"{number(growth.get('evaluations', {}).get('all'))} | | | | | | | "
                     f"{number(growth.get('entries', {}).get('all'))} |")
    return lines


def apply_table(stem, data):
    copy = data["copy_bandwidth"]
    lines = [f"**Apply cost** ({machine_line(data)}); STREAM-style copy {copy['best'] / 1e9:.1f} GB/s. "
             f"![apply]({stem}.png)", "",
             "| problem, format | n | apply ms | apply / MatMult (time) | bytes / A's bytes | "
             "apply GB/s | fraction of copy | MatMult fraction of copy |",
             "|---|---|---|---|---|---|---|---|"]
    for r in data["runs"]:
        stand_in = " (stand-in)" if r.get("stand_in") else ""
        name = f"{r['problem']} {r.get('config', r['format'])}{stand_in}"
        lines.append(f"| {name} | {r['n']} | {r['apply_s'] * 1e3:.3f} | "
                     f"{r['time_ratio']:.1f} | {r['bytes_ratio']:.1f} | {r['apply_bandwidth'] / 1e9:.2f} | "
                     f"{r['fraction_of_copy']:.2f} | {r['matmult_fraction_of_copy']:.2f} |")
    return lines


def flops_table(data):
    mm = data["matmul"]
    lines = [f"**Kernel evaluation** ({machine_line(data)}); dense matmul n={mm['n']}: "
             f"{mm['float32']['best'] / 1e9:.1f} GFLOP/s float32, {mm['float64']['best'] / 1e9:.1f} "
             "GFLOP/s float64. FLOPs counted from the architecture (2 per multiply-add of every "
             "dense layer). "
             "![kernel](kernel_flops.png)", "",
             "| model | precision | FLOPs / pair | evaluations/s | GFLOP/s | fraction of matmul | "
             "compute-only fraction |", "|---|---|---|---|---|---|---|"]
    for r in data["runs"]:
        lines.append(f"| {r['model']} | {r['precision']} | {r['flops_per_pair']} | "
                     f"{r['evaluations_per_s']:.3g} | {r['flops'] / 1e9:.2f} | "
                     f"{r['fraction_of_matmul']:.3f} | {r['compute_fraction_of_matmul']:.3f} |")
    for name, r in data.get("closed_form", {}).items():
        lines.append(f"| closed-form {name} | double | - | {r['evaluations_per_s']:.3g} | - | - | - |")
    bounded = [r for r in data["runs"] if r.get("fraction_of_tanh_bound")]
    if bounded:
        lines += ["", "Every hidden unit costs a tanh (XLA counts "
                  f"{bounded[0]['transcendentals_per_pair']:.0f} per pair); at the machine's own tanh "
                  "rate, measured in the same run, that bounds the evaluations per second to: " + ", ".join(
                      f"{r['model']} {r['precision']} {r['tanh_bound_evaluations_per_s']:.3g}/s "
                      f"(reached {r['fraction_of_tanh_bound']:.2f})" for r in bounded) + ". With layers 10 "
                  "to 50 wide the products are too narrow for the matmul rate; a fraction above 1 means "
                  "XLA's fused tanh is faster than the standalone one."]
    return lines


def two_level_table(data):
    """bench/two_level.py: a Galerkin coarse grid composed with greenpc, and without the kernel."""
    o = data["options"]
    lines = [f"**With a coarse-grid correction** (`bench/two_level.py`; {machine_line(data)}); "
             f"{data['protocol']}. A multiplicative PCCOMPOSITE of a Galerkin coarse solve ({o['box']} x "
             f"{o['box']} aggregates, prolongation smoothed with omega {o['smooth']:g}, LU) and then either "
             f"greenpc's sparse format at radius r with {o['sweeps']} SOR sweeps, or the SOR sweeps alone "
             "(no kernel). Each cell: iterations (mean) / set-up + solve seconds / ratio to classical "
             "AMG; F = not converged.", ""]
    rows = [(p, n, row) for p, by_n in data["runs"].items() for n, row in by_n.items()]
    if not rows:
        return lines
    labels = list(rows[0][2])
    lines += ["| problem | N | " + " | ".join(labels) + " |", "|---|---|" + "---|" * len(labels)]
    for problem, n, row in rows:
        cells = [(f"{r['mean']:.0f}" if r["converged"] else "F") + f" / {r['total_s']:.3g} / "
                 f"{r['to_amg']:.1f}x" for r in (row[label] for label in labels)]
        lines.append(f"| {problem} | {n} | " + " | ".join(cells) + " |")
    control = f"coarse+sor{o['sweeps']}"
    kernel = [label for label in labels if label.startswith("coarse+greenpc")]
    if control in labels and kernel:
        saved = max(row[control]["mean"] - row[label]["mean"] for _, _, row in rows for label in kernel)
        slower = min(row[label]["total_s"] / row[control]["total_s"] for _, _, row in rows
                     for label in kernel)
        lines += ["", f"With the coarse grid, greenpc's kernel saves at most {saved:.1f} iterations over "
                  f"the SOR sweeps alone ({control}), and its set-up makes every such run at least "
                  f"{slower:.1f}x slower than {control}."]
    return lines


def training_table(data):
    lines = [f"**Training throughput** ({machine_line(data)}); paper's batch sizes.", "",
             "| preset | stage | steps/s | samples/s | residual samples/s | compile + first epoch s |",
             "|---|---|---|---|---|---|"]
    for r in data["runs"]:
        for name, s in r["stages"].items():
            lines.append(f"| {r['problem']} | {name} ({s['stage']}) | {s['steps_per_s']:.2f} | "
                         f"{s['samples_per_s']:.3g} | {s['residual_samples_per_s']:.3g} | "
                         f"{s['compile_and_first_epoch_s']:.1f} |")
    return lines


def section(results):
    """The performance section's markdown from the results found."""
    lines = ["Generated by `make bench` from the JSON files beside this page (each driver's docstring, "
             "`bench/*.py`, says what it measures and how); numbers from a machine marked "
             "*disturbed* were taken while other work shared its cores.",
             "", "| target (issue 9) | measured | |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in targets(results)]
    for stem in sorted(s for s in results if s.startswith("solve_")):
        lines += [""] + solve_tables(stem, results[stem])
    if "setup_cost" in results:
        lines += [""] + setup_table(results["setup_cost"])
    for stem in sorted(s for s in results if s.startswith("apply_")):
        lines += [""] + apply_table(stem, results[stem])
    if "kernel_flops" in results:
        lines += [""] + flops_table(results["kernel_flops"])
    if "training" in results:
        lines += [""] + training_table(results["training"])
    for stem in sorted(s for s in results if s.startswith("two_level_")):
        lines += [""] + two_level_table(results[stem])
    return "\n".join(lines)


def main():
    opts = read((Option("results", str, records.RESULTS, "folder of the JSON results"),), "report_")
    path = os.path.join(opts["results"], "README.md")
    with open(path, "w") as handle:
        handle.write(f"{TITLE}\n\n{section(read_results(opts['results']))}\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
