"""Kernel evaluation throughput in FLOP/s against the machine's dense matrix product, float32 and float64.

    python bench/kernel_flops.py                           # bench/results/kernel_flops.json + .png
    python bench/kernel_flops.py -flops_pairs 65536 -flops_chunks 4096,32768,262144

For every shipped model, the network's cost per pair is counted from its architecture: each dense layer
is in x out multiply-adds (the domain-decomposition experts Q times, or as many as the kernel evaluates
when a gate over the parameters leaves some out, ``-greenpc_gate_tol``), two FLOPs each; biases, tanh and
the scale exponentials are left out, so the figure is a lower bound of the work done. XLA's own
count of the compiled evaluator is recorded beside it. Throughput is measured two ways, per precision
(greenpc's ``LearnedKernel`` with precision "single" / "double"):

- end to end: ``kernel(x, y)`` on host arrays, as the preconditioner calls it (padding to the chunk,
  conversion, transfer, the finiteness check);
- compute only: the jitted evaluator on one chunk already on the device.

Each is divided by the dense matrix product's FLOP/s measured in the same run
(``machine.matmul_flops``, the better of XLA and numpy's BLAS). The closed-form kernels' evaluation
rates are recorded for comparison (no FLOP count: they are not networks).
"""
import os
import sys
import time

import petsc4py

petsc4py.init(sys.argv)
import numpy as np  # noqa: E402
from petsc4py import PETSc  # noqa: E402

import candidates  # noqa: E402
import machine  # noqa: E402
import records  # noqa: E402
from greenpc import models  # noqa: E402
from greenpc.kernels import closed_form  # noqa: E402
from greenpc.options import Option, positive, read  # noqa: E402

SPECS = (
    Option("models", str, "auto", "shipped models to measure (auto: all)"),
    Option("pairs", int, 1 << 19, "pairs per end-to-end measurement", check=positive),
    Option("chunks", str, "", "chunk sizes to compare with the kernel's default (empty: none)"),
    Option("matmul_n", int, 2048, "size of the dense matrix product", check=positive),
    Option("repeats", int, 3, "timings per measurement (the fastest counts)", check=positive),
    Option("out", str, records.RESULTS, "folder of the JSON results and the plot"),
)
PRECISIONS = {"single": "float32", "double": "float64"}


def multiply_adds(params):
    """Multiply-adds per pair: in x out for every dense layer's kernel (times Q for stacked experts)."""
    import jax

    total = 0
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if getattr(path[-1], "key", None) == "kernel":
            total += int(np.prod(leaf.shape))
    return total


def xla_cost(kernel):
    """XLA's counts per pair of the compiled evaluator: {"flops", "transcendentals"} (values None when
    it does not say)."""
    import jax.numpy as jnp

    x = jnp.zeros((kernel.chunk, kernel.dim), kernel._dtype)
    try:
        analysis = kernel._batch.lower(kernel._weights, x, x, kernel._feats).compile().cost_analysis()
    except Exception:  # cost analysis is best effort across jax versions
        analysis = None
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0] if analysis else {}
    counts = {key: (analysis or {}).get(key) for key in ("flops", "transcendentals")}
    return {key: value / kernel.chunk if value else None for key, value in counts.items()}


def end_to_end(kernel, pairs, repeats):
    rng = np.random.default_rng(2)
    x = candidates.interior_points(rng, pairs, kernel.dim)
    y = candidates.interior_points(rng, pairs, kernel.dim)
    kernel(x[:8], y[:8])
    return pairs / machine.best_time(lambda: kernel(x, y), repeats)


def compute_only(kernel, repeats):
    import jax.numpy as jnp

    rng = np.random.default_rng(3)
    x = jnp.asarray(candidates.interior_points(rng, kernel.chunk, kernel.dim), kernel._dtype)
    y = jnp.asarray(candidates.interior_points(rng, kernel.chunk, kernel.dim), kernel._dtype)

    def run():
        kernel._batch(kernel._weights, x, y, kernel._feats).block_until_ready()

    run()
    return kernel.chunk / machine.best_time(run, max(repeats, 5))


def measure_model(name, precision, chunks, opts, matmul, tanh):
    from greenpc import weights
    from greenpc.kernels.learned import LearnedKernel

    model = weights.load(models.path(name))
    trained = model.problem.get("trained_params", {})
    values = {k: spec["low"] for k, spec in trained.items()}
    # the network the kernel evaluates: a parametric model's lightly weighed experts are left out
    # (-greenpc_gate_tol), so count the parameters it keeps
    evaluated = LearnedKernel(model, values, precision)
    macs = multiply_adds(evaluated._weights)
    flops_per_pair = 2 * macs
    reference = matmul[PRECISIONS[precision]]["best"]
    out = {"model": name, "precision": precision, "multiply_adds_per_pair": macs,
           "flops_per_pair": flops_per_pair, "architecture": model.architecture.to_dict(),
           "matmul_flops": reference, "chunks": [],
           "params": values,      # a parametric model is measured at the low end of its range
           "experts": list(evaluated.experts[:2]) if evaluated.experts else None}
    # the kernel's default chunk first (what the preconditioner uses), then the others asked for
    for chunk in [None] + list(chunks):
        kernel = LearnedKernel(model, values, precision, chunk=chunk) if chunk else evaluated
        start = time.perf_counter()
        kernel(np.full((1, kernel.dim), 0.5), np.full((1, kernel.dim), 0.25))
        compile_s = time.perf_counter() - start
        if "xla_flops_per_pair" not in out:
            cost = xla_cost(kernel)
            out["xla_flops_per_pair"] = cost["flops"]
            # every hidden unit is a tanh: at the machine's tanh rate this bounds the evaluations/s
            out["transcendentals_per_pair"] = cost["transcendentals"]
            out["tanh_per_s"] = tanh[PRECISIONS[precision]]
            out["tanh_bound_evaluations_per_s"] = (tanh[PRECISIONS[precision]] / cost["transcendentals"]
                                                   if cost["transcendentals"] else None)
        rate = end_to_end(kernel, opts["pairs"], opts["repeats"])
        compute = compute_only(kernel, opts["repeats"])
        out["chunks"].append({
            "chunk": kernel.chunk, "compile_s": compile_s,
            "evaluations_per_s": rate, "flops": rate * flops_per_pair,
            "fraction_of_matmul": rate * flops_per_pair / reference,
            "compute_evaluations_per_s": compute, "compute_flops": compute * flops_per_pair,
            "compute_fraction_of_matmul": compute * flops_per_pair / reference})
    out.update({k: out["chunks"][0][k] for k in ("evaluations_per_s", "flops", "fraction_of_matmul",
                                        "compute_flops", "compute_fraction_of_matmul")})
    if out["tanh_bound_evaluations_per_s"]:
        out["fraction_of_tanh_bound"] = out["evaluations_per_s"] / out["tanh_bound_evaluations_per_s"]
    return out


def plot(path, data):
    plt = records.pyplot()
    runs = data["runs"]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(runs) + 3), 4.5))
    at = np.arange(len(runs))
    ax.bar(at - 0.2, [r["fraction_of_matmul"] for r in runs], 0.4, label="end to end")
    ax.bar(at + 0.2, [r["compute_fraction_of_matmul"] for r in runs], 0.4, label="compute only")
    ax.axhline(0.3, color="grey", ls="--", lw=0.8, label="target 0.3")
    ax.set_xticks(at, [f"{r['model']}\n{PRECISIONS[r['precision']]}" for r in runs], fontsize=8)
    ax.set_ylabel("kernel FLOP/s / dense matmul FLOP/s")
    ax.legend(fontsize=8)
    records.save_figure(fig, path, f"kernel evaluation: {machine.label(data['machine'])}", 9)


def main():
    opts = read(SPECS, "flops_")
    comm = PETSc.COMM_WORLD
    results = records.Results(os.path.join(opts["out"], "kernel_flops.json"), opts,
                              "kernel throughput", comm, runs=[], closed_form={})
    data = results.data
    data["matmul"] = matmul = machine.matmul_flops(opts["matmul_n"], opts["repeats"])
    data["tanh_per_s"] = tanh = machine.tanh_rate(repeats=opts["repeats"])
    for precision in PRECISIONS.values():
        records.log(f"  dense matmul {precision}: XLA {matmul[precision]['xla'] / 1e9:.1f} GFLOP/s, "
                    f"numpy {matmul[precision]['numpy'] / 1e9:.1f} GFLOP/s")
    names = list(models.names()) if opts["models"] == "auto" else records.names(opts["models"])
    chunks = records.integers(opts["chunks"])
    for precision in PRECISIONS:
        for name in names:
            result = measure_model(name, precision, chunks, opts, matmul, tanh)
            data["runs"].append(result)
            records.log(f"  {name} {precision}: {result['multiply_adds_per_pair']} multiply-adds per "
                        f"pair, {result['evaluations_per_s']:.3g} evaluations/s = "
                        f"{result['flops'] / 1e9:.2f} GFLOP/s = {result['fraction_of_matmul']:.3f} "
                        f"of matmul (compute only {result['compute_fraction_of_matmul']:.3f})")
            if result.get("fraction_of_tanh_bound"):
                records.log(f"    {result['transcendentals_per_pair']:.0f} tanh per pair at "
                            f"{result['tanh_per_s']:.3g} tanh/s bound it to "
                            f"{result['tanh_bound_evaluations_per_s']:.3g} evaluations/s: reached "
                            f"{result['fraction_of_tanh_bound']:.2f} of that")
            for c in result["chunks"][1:]:
                records.log(f"    chunk {c['chunk']}: {c['evaluations_per_s']:.3g} evaluations/s end to "
                            f"end, {c['compute_evaluations_per_s']:.3g} compute only")
            results.save()
    for name in ("poisson1d", "poisson2d"):
        kernel = closed_form(name)
        data["closed_form"][name] = {"evaluations_per_s": end_to_end(kernel, opts["pairs"],
                                                                     opts["repeats"])}
        records.log(f"  closed-form {name}: {data['closed_form'][name]['evaluations_per_s']:.3g} "
                    "evaluations/s")
    results.finish(plot if data["runs"] else None)


if __name__ == "__main__":
    main()
