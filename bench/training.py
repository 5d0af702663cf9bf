"""Training throughput (steps and samples per second) of the trainer for the 1D and 2D presets.

    python bench/training.py                                  # bench/results/training.json
    python bench/training.py -training_problems react1d -training_epochs 2

For each preset the configuration is the trainer's own with the paper's settings
(``greenpc.train.config.from_options``, so ``-train_*`` options on the command line apply: batches of 500 boundary, 500 anchor, 500 uniform and 1500
near-diagonal pairs, 20 batches per epoch), and two stages are timed with the trainer's jitted epoch
(``greenpc.train.loop.make_epoch``): the first (one epsilon stage active, the cheapest step) and the
last, the domain-decomposition stage (every stage and the Q experts active, the most expensive).
The first epoch compiles and is timed apart; the next ``-training_epochs`` are the throughput. A
sample is one (x, y) pair of a batch; residual pairs (uniform and near-diagonal) carry the forward
Laplacian and cost most.
"""
import os
import sys
import time

import petsc4py

petsc4py.init(sys.argv)
from petsc4py import PETSc  # noqa: E402

import records  # noqa: E402
from greenpc.driver import pushed_options  # noqa: E402
from greenpc.options import Option, positive, read  # noqa: E402

SPECS = (
    Option("problems", str, "react1d,react2d", "presets to train (1D and 2D)"),
    Option("stages", str, "first,dd", "stages to time: first, dd (the last stage), or indices"),
    Option("epochs", int, 3, "timed epochs per stage (after the compiling one)", check=positive),
    Option("out", str, records.RESULTS, "folder of the JSON results"),
)


def stage_index(name, stages):
    if name == "first":
        return 0
    if name == "dd":
        return len(stages) - 1
    return int(name)


def measure(problem, stage_names, epochs):
    import jax

    from greenpc.model.network import init_params
    from greenpc.train import config as train_config
    from greenpc.train import loop
    from greenpc.train.sampling import Anchors, make_sampler

    with pushed_options({"problem": problem, "train_progress": "0"}):
        config = train_config.from_options()
    arch, stages = config.architecture(), config.stages()
    start = time.perf_counter()
    anchors = Anchors(config)
    anchors_s = time.perf_counter() - start
    sample = make_sampler(config, anchors)
    sizes = config.batch_sizes()
    per_step = sum(sizes.values())
    per_epoch = config.options["batches_per_epoch"]
    total_pde_steps = sum(s.steps for s in stages if s.kind == "pde")
    out = {"problem": problem, "dim": config.dim, "batch": sizes, "pairs_per_step": per_step,
           "residual_pairs_per_step": sizes["uniform"] + sizes["near"],
           "batches_per_epoch": per_epoch, "anchors_s": anchors_s, "anchor_pairs": len(anchors),
           "architecture": arch.to_dict(), "stages": {}}
    for name in stage_names:
        stage = stages[stage_index(name, stages)]
        params = init_params(arch, config.options["seed"])
        if stage.dd:
            params = loop.copy_experts(config, arch, params)
        opt = loop.optimizer(config, stage, params)
        opt_state = opt.init(params)
        epoch = loop.make_epoch(config, arch, stage, opt, anchors, sample, total_pde_steps)
        start = time.perf_counter()
        params, opt_state, terms = epoch(params, opt_state, 0)
        jax.block_until_ready(terms)
        compile_s = time.perf_counter() - start
        start = time.perf_counter()
        for k in range(epochs):
            params, opt_state, terms = epoch(params, opt_state, (k + 1) * per_epoch)
        jax.block_until_ready(terms)
        seconds = time.perf_counter() - start
        steps = epochs * per_epoch
        out["stages"][name] = {"stage": stage.name, "kind": stage.kind, "active_stages": stage.active,
                               "dd": stage.dd, "compile_and_first_epoch_s": compile_s,
                               "steps": steps, "seconds": seconds, "steps_per_s": steps / seconds,
                               "samples_per_s": steps * per_step / seconds,
                               "residual_samples_per_s": steps * out["residual_pairs_per_step"]
                               / seconds}
    return out


def main():
    opts = read(SPECS, "training_")
    comm = PETSc.COMM_WORLD
    results = records.Results(os.path.join(opts["out"], "training.json"), opts,
                              "training throughput", comm, runs=[])
    data = results.data
    # training is serial: rank 0 trains, the others only wait
    if comm.getRank() == 0:
        for problem in records.names(opts["problems"]):
            result = measure(problem, records.names(opts["stages"]), opts["epochs"])
            data["runs"].append(result)
            for name, s in result["stages"].items():
                records.log(f"  {problem} {name} stage ({s['stage']}): {s['steps_per_s']:.2f} steps/s, "
                            f"{s['samples_per_s']:.3g} samples/s (compile + first epoch "
                            f"{s['compile_and_first_epoch_s']:.1f} s)")
            results.save()
    results.finish()


if __name__ == "__main__":
    main()
