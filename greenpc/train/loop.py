"""The training loop: stages applied in turn, one jitted epoch at a time, with checkpoints and resume.

A run is a pure function of its configuration and seed: batch keys are folded from the global step, so a
run resumed from a checkpoint (parameters, optimizer state, position) continues exactly as an
uninterrupted one would.
"""
import platform
import sys
import time
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..model.network import final_params, init_params
from . import checkpoint as ckpt
from . import warm
from .loss import make_gate_loss, make_loss
from .sampling import Anchors, make_sampler

def optimizer(config, stage, params):
    """Adam on the stage's trainable groups (exponential decay over the stage), zero elsewhere."""
    if stage.kind == "gate":
        schedule = stage.lr
    else:
        schedule = optax.exponential_decay(stage.lr, stage.steps, config.options["lr_final"] / stage.lr)
    labels = {group: ("train" if group in stage.trainable else "frozen") for group in params}
    return optax.multi_transform({"train": optax.adam(schedule), "frozen": optax.set_to_zero()},
                                 labels)


def aux_weight(config, total_steps):
    """w_aux(step): geometric decay from aux_weight to aux_weight_final over the PDE steps."""
    start, end = config.options["aux_weight"], config.options["aux_weight_final"]

    def weight(step):
        t = jnp.clip(step / max(total_steps, 1), 0.0, 1.0)
        if start > 0 and end > 0:
            return start * (end / start) ** t
        return start + (end - start) * t

    return weight


def copy_experts(config, arch, params):
    """Q slightly perturbed copies of the last stage (section 3.4) become the DD experts."""
    source = params[f"stage_{arch.stages - 1}"]
    key = jax.random.PRNGKey(config.options["seed"] + 7919)
    leaves, tree = jax.tree_util.tree_flatten(source)
    keys = jax.random.split(key, len(leaves))
    delta = config.options["dd_perturbation"]

    def perturbed(leaf, k):
        rms = jnp.sqrt(jnp.mean(leaf ** 2)) + 1e-12
        noise = jax.random.normal(k, (arch.subdomains,) + leaf.shape, leaf.dtype)
        return leaf[None] + delta * rms * noise

    experts = jax.tree_util.tree_unflatten(tree, [perturbed(l, k) for l, k in zip(leaves, keys)])
    return {**params, "experts": experts}


def silence_branches(params, k):
    """Stage k's near and middle branches with a zero output layer: G does not change when the stage
    starts, the branches learn from there (their hidden layers as soon as the output layer moves)."""
    stage = dict(params[f"stage_{k}"])
    for branch in ("near", "middle"):
        layers = dict(stage[branch])
        layers["output"] = jax.tree_util.tree_map(jnp.zeros_like, layers["output"])
        stage[branch] = layers
    return {**params, f"stage_{k}": stage}


def make_epoch(config, arch, stage, opt, anchors, sample, total_pde_steps):
    """A jitted function running one epoch (batches_per_epoch steps) of a stage."""
    per_epoch = config.options["batches_per_epoch"]
    base = jax.random.PRNGKey(config.options["seed"])
    if stage.kind == "gate":
        loss = make_gate_loss(config, arch)

        def objective(params, step):
            return loss(params, jax.random.fold_in(base, step))
    else:
        loss = make_loss(config, arch, stage, anchors.scale)
        w_aux = aux_weight(config, total_pde_steps)
        fixed = {"res": config.options["res_weight"], "bc": config.options["bc_weight"]}

        def objective(params, step):
            batch = sample(jax.random.fold_in(base, step), stage.epsilon)
            return loss(params, batch, {**fixed, "aux": w_aux(step)})

    def epoch(params, opt_state, first_step):
        def one(carry, step):
            params, opt_state = carry
            (total, terms), grads = jax.value_and_grad(objective, has_aux=True)(params, step)
            updates, opt_state = opt.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), {**terms, "total": total}

        steps = first_step + jnp.arange(per_epoch)
        (params, opt_state), terms = jax.lax.scan(one, (params, opt_state), steps)
        return params, opt_state, jax.tree_util.tree_map(jnp.mean, terms)

    return jax.jit(epoch)


def versions():
    import subprocess

    import flax

    from .. import __version__

    here = __file__.rsplit("/", 3)[0]
    try:
        commit = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"python": platform.python_version(), "jax": jax.__version__, "flax": flax.__version__,
            "optax": optax.__version__, "numpy": np.__version__, "greenpc": __version__,
            "greenpc_commit": commit}


class Progress:
    """tqdm bar over all steps; quiet when disabled."""

    def __init__(self, total, enabled, initial):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True,
                            mininterval=1.0 if sys.stderr.isatty() else 30.0)

    def update(self, steps, text):
        if self.bar is not None:
            self.bar.update(steps)
            self.bar.set_postfix_str(text, refresh=False)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def train(config, log=print):
    """Run (or resume) the configured training; write the weight file; return its path and record."""
    arch = config.architecture()
    stages = config.stages()
    per_epoch = config.options["batches_per_epoch"]
    total_steps = sum(s.steps for s in stages)
    total_pde_steps = sum(s.steps for s in stages if s.kind == "pde")
    anchors = Anchors(config)
    sample = make_sampler(config, anchors)

    state = ckpt.load(config) if config.options["resume"] else None
    if state is None:
        state = {"params": init_params(arch, config.options["seed"]), "stage": 0, "epoch": 0,
                 "step": 0, "history": [], "elapsed": 0.0, "opt_leaves": None}
        if config.options["init"]:
            state["params"], state["stage"], state["step"] = warm.initial_state(
                config, arch, stages, state["params"])
            log(f"fine-tuning {config.options['init']}: stage {stages[state['stage']].name} only "
                f"(step {state['step']} of {total_steps})")
    else:
        log(f"resuming {config.checkpoint}: stage {state['stage']} epoch {state['epoch']} "
            f"(step {state['step']} of {total_steps})")
    params = state["params"]
    progress = Progress(total_steps, config.options["progress"], state["step"])
    last_save = time.time()
    start = time.time() - state["elapsed"]
    every = config.options["checkpoint_steps"]
    # a fine-tuned run's network is trained already: no stage start changes it
    fresh_start = not config.options["init"]
    # with no source to learn (a free-space part split off), G is smooth: the first stage starts from
    # the far-field branch alone too (its near-field branches' initial Laplacians are of order eps^-2)
    part = config.split()
    quiet_first = part is not None and part.removes_source
    for index in range(state["stage"], len(stages)):
        stage = stages[index]
        fresh = fresh_start and not (index == state["stage"] and state["epoch"] > 0)
        if fresh and stage.kind == "pde" and not stage.dd and (index > 0 or quiet_first) \
                and config.options["new_branches"] == "zero":
            params = silence_branches(params, stage.active - 1)
        if fresh and stage.dd and not (index > 0 and stages[index - 1].dd):
            params = copy_experts(config, arch, params)
        opt = optimizer(config, stage, params)
        opt_state = opt.init(params)
        if index == state["stage"] and state["opt_leaves"] is not None:
            opt_state = ckpt.restore_tree(opt_state, state["opt_leaves"])
        epoch_fn = make_epoch(config, arch, stage, opt, anchors, sample, total_pde_steps)
        epochs = stage.steps // per_epoch + (stage.steps % per_epoch > 0)
        first_epoch = state["epoch"] if index == state["stage"] else 0
        tick = time.time()
        for epoch in range(first_epoch, epochs):
            step = state["step"]
            params, opt_state, terms = epoch_fn(params, opt_state, step)
            terms = {k: float(v) for k, v in terms.items()}
            state["step"] = step + per_epoch
            state["history"].append([index, state["step"]] + [terms.get(k, float("nan")) for k in
                                                              ("total", "res", "bc", "aux", "gate")])
            rate = (epoch + 1 - first_epoch) * per_epoch / max(time.time() - tick, 1e-9)
            progress.update(per_epoch, f"{stage.name} " + " ".join(
                f"{k}={v:.2e}" for k, v in terms.items() if k != "total") + f" {rate:.1f} it/s")
            finished = epoch + 1 == epochs
            due = (time.time() - last_save > 60 * config.options["checkpoint_minutes"]
                   or (every and (state["step"] // every) > (step // every)))
            if finished or due:
                position = (index + 1, 0) if finished else (index, epoch + 1)
                ckpt.save(config, params, None if finished else opt_state, *position, state["step"],
                          state["history"], time.time() - start)
                last_save = time.time()
        state["opt_leaves"] = None
    progress.close()
    elapsed = time.time() - start
    record = training_record(config, stages, state, elapsed)
    write_model(config, arch, params, record, config.output)
    log(f"wrote {config.output} after {state['step']} steps in {elapsed / 60:.1f} min")
    return config.output, record


def write_model(config, arch, params, record, path):
    from .. import weights

    problem = {"name": config.problem, "params": config.fixed_params,
               "trained_params": config.trained_params,
               "domain": [[0.0] * config.dim, [1.0] * config.dim]}
    from ..problems.split import to_record

    problem.update(to_record(config.split()))
    weights.save(path, arch, problem, final_params(arch, params), record)


def export(config, path, log=print):
    """Write the model of the configuration's checkpoint (an unfinished run) as a weight file."""
    state = ckpt.load(config)
    if state is None:
        raise ckpt.CheckpointError(f"-train_export: there is no checkpoint {config.checkpoint} to export")
    stages = config.stages()
    record = training_record(config, stages, state, state["elapsed"])
    record["unfinished"] = f"exported from {config.checkpoint} at step {state['step']}"
    # the last stage that trained: a checkpoint at a stage's end points at the next one (epoch 0, its new
    # parameters still initial, a finished run's past the last stage)
    stage = stages[state["stage"] - 1 if state["epoch"] == 0 and state["stage"] > 0 else state["stage"]]
    arch, params = trained_part(config.architecture(), state["params"], stage)
    write_model(config, arch, params, record, path)
    log(f"wrote {path}: {record['unfinished']}")
    return path


def trained_part(arch, params, stage):
    """The network a training stage evaluates, as a model: before the DD stage, the later stages and the
    experts still hold their initial values, so the model keeps only the first ``stage.active`` stages
    and no experts (what that stage's loss sees)."""
    if stage.dd and stage.kind == "pde":
        return arch, params
    k = stage.active
    arch = replace(arch, epsilons=arch.epsilons[:k], widths=arch.widths[:k], alpha0=arch.alpha0[:k],
                   subdomains=1)
    kept = {"far", "boundary"} | {f"stage_{j}" for j in range(k)}
    return arch, {name: value for name, value in params.items() if name in kept}


def command_line():
    """How this run was started, as a user would type it."""
    argv = list(sys.argv)
    if argv and argv[0].replace("\\", "/").endswith("greenpc/train/__main__.py"):
        argv[0] = "python -m greenpc.train"
    return " ".join(argv)


def training_record(config, stages, state, elapsed):
    history = state["history"]
    final = history[-1] if history else []
    stride = max(1, len(history) // 1000)
    return {
        "command": command_line(),
        "seed": config.options["seed"], "steps": state["step"], "wall_time_s": elapsed,
        "final_losses": dict(zip(("total", "res", "bc", "aux"), final[2:6])) if final else {},
        "history_columns": ["stage", "step", "total", "res", "bc", "aux", "gate"],
        "history": [[None if isinstance(v, float) and np.isnan(v) else v for v in row]
                    for row in history[::stride]],
        "stages": [s.__dict__ for s in stages], "config": config.to_dict(), "versions": versions(),
        **({"fine_tuned_from": warm.provenance(config)} if config.options["init"] else {}),
        "machine": f"{platform.machine()} {platform.processor() or ''} {jax.device_count()} "
                   f"{jax.devices()[0].platform} device(s)".strip(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
