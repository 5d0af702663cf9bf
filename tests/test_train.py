"""The trainer on a tiny configuration: stages as data, the DD hand-over, training lowers the loss."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from greenpc import weights
from greenpc.kernels.learned import LearnedKernel
from greenpc.model.network import final_params, init_params, pair_function
from greenpc.train import checkpoint as ckpt
from greenpc.train import config as cfg
from greenpc.train.loop import copy_experts, export, train, trained_part

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY = {"problem": "react1d", "train_widths": "4,5", "train_epsilons": "0.01,0.005",
        "train_far_width": "8", "train_epochs": "6,6,6", "train_batches_per_epoch": "5",
        "train_batch_boundary": "32", "train_batch_anchor": "32", "train_batch_uniform": "32",
        "train_batch_near": "32", "train_anchor_N": "8", "train_gate_steps": "10",
        "train_subdomains": "2", "train_progress": "0", "train_seed": "3"}


def test_stages_are_data_with_growing_trainable_groups():
    config = cfg.from_options(dict(TINY))
    stages = config.stages()
    assert [s.kind for s in stages] == ["pde", "pde", "gate", "pde"]
    assert stages[0].trainable == ("far", "stage_0")
    assert stages[1].trainable == ("far", "stage_0", "stage_1")
    assert stages[2].trainable == ("gate",)
    assert set(stages[3].trainable) == {"far", "stage_0", "experts", "gate"}
    assert [s.epsilon for s in stages] == [0.01, 0.005, 0.005, 0.005]
    assert all(s.steps == 30 for s in stages if s.kind == "pde")


def test_domain_decomposition_starts_from_the_trained_last_stage():
    """Right after the hand-over, the Q perturbed experts mixed by any gate reproduce the model."""
    config = cfg.from_options({**TINY, "train_dd_perturbation": "0"})
    arch = config.architecture()
    params = init_params(arch, 0)
    params = jax.tree_util.tree_map(
        lambda a: a + 0.2 * jax.random.normal(jax.random.PRNGKey(1), a.shape), params)
    handed = copy_experts(config, arch, params)
    plain, mixed = pair_function(arch, dd=False), pair_function(arch, dd=True)
    x, y = jnp.array([0.3]), jnp.array([0.6])
    assert np.isclose(float(plain(params, x, y, jnp.zeros(0))),
                      float(mixed(handed, x, y, jnp.zeros(0))), rtol=1e-5)


def test_missing_and_inconsistent_options_are_refused():
    with pytest.raises(ValueError, match="-problem is required"):
        cfg.from_options({})
    with pytest.raises(ValueError, match="one width per epsilon"):
        cfg.from_options({**TINY, "train_widths": "4"}).architecture()
    with pytest.raises(ValueError, match="train_epochs"):
        cfg.from_options({**TINY, "train_epochs": "1,1"}).stages()
    with pytest.raises(ValueError, match="cannot take 'theta'"):
        cfg.from_options({**TINY, "train_param": "theta=0:1"})


def test_tiny_training_lowers_the_loss_and_writes_a_loadable_model(tmp_path):
    output = tmp_path / "tiny.gpc"
    config = cfg.from_options({**TINY, "train_output": str(output)})
    path, record = train(config, log=lambda *a: None)
    history = np.array([[np.nan if v is None else v for v in row] for row in record["history"]])
    first_stage = history[history[:, 0] == 0]
    assert first_stage[-1, 2] < first_stage[0, 2]  # total loss of the first stage went down
    model = weights.load(path)
    assert model.architecture.subdomains == 2 and model.record["training"]["steps"] == 100
    assert "stage_1" not in model.params and "experts" in model.params
    kernel = LearnedKernel(model)
    values = kernel(np.array([[0.2], [0.5]]), np.array([[0.5], [0.5]]))
    assert values.shape == (2,) and np.all(np.isfinite(values))


def test_export_writes_the_checkpointed_model_of_a_finished_or_unfinished_run(tmp_path):
    output = tmp_path / "tiny.gpc"
    config = cfg.from_options({**TINY, "train_output": str(output)})
    with pytest.raises(ValueError, match="no checkpoint"):
        export(config, str(tmp_path / "none.gpc"), log=lambda *a: None)
    train(config, log=lambda *a: None)
    # the last checkpoint holds the final parameters: its export is the trained model, bit for bit
    exported = weights.load(export(config, str(tmp_path / "exported.gpc"), log=lambda *a: None))
    trained = weights.load(str(output))
    assert "exported from" in exported.record["training"]["unfinished"]
    flat = weights.flatten(trained.params)
    assert flat.keys() == weights.flatten(exported.params).keys()
    assert all(np.array_equal(v, weights.flatten(exported.params)[k]) for k, v in flat.items())
    # a checkpoint written at the end of the first stage points at the second one, whose parameters
    # are still initial: its export is the first stage's network
    state = ckpt.load(config)
    ckpt.save(config, state["params"], None, 1, 0, 30, state["history"][:6], 1.0)
    early = weights.load(export(config, str(tmp_path / "early.gpc"), log=lambda *a: None))
    assert early.architecture.stages == 1 and not early.architecture.domain_decomposition
    assert set(early.params) == {"far", "stage_0"}


def test_export_of_an_early_stage_is_the_network_that_stage_trains(tmp_path):
    """Before the DD stage the later stages and experts hold random initial values: an exported model
    of stage k evaluates exactly the first k + 1 stages, as that stage's loss does."""
    config = cfg.from_options({**TINY, "train_output": str(tmp_path / "tiny.gpc")})
    arch, stages = config.architecture(), config.stages()
    params = init_params(arch, 0)
    x, y = np.array([[0.2], [0.45], [0.7]]), np.array([[0.5], [0.3], [0.7]])
    for stage in stages:
        sub, kept = trained_part(arch, params, stage)
        path = str(tmp_path / f"{stage.name}.gpc")
        weights.save(path, sub, {"name": "react1d", "params": {}, "trained_params": {},
                                 "domain": [[0.0], [1.0]]},
                     final_params(sub, kept), {"steps": 0})
        values = LearnedKernel(weights.load(path))(x, y)
        dd = stage.dd and stage.kind == "pde"
        seen = jax.vmap(pair_function(arch, stages=stage.active, dd=dd), in_axes=(None, 0, 0, None))(
            params, jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32), jnp.zeros(0))
        assert np.allclose(values, np.asarray(seen), rtol=1e-5, atol=1e-6), stage.name
        assert sub.stages == (stage.active if not dd else arch.stages)
        assert sub.domain_decomposition == dd


def test_a_later_stage_starts_from_the_trained_network(tmp_path, monkeypatch):
    """With -train_new_branches zero (the default) the branches an epsilon stage adds output 0 when it
    starts: the network the stage trains is, at its first step, the one the previous stage left. Their
    initial values (-train_new_branches random) would change it. The first stage starts from the
    initial parameters, and the DD experts are copies of the trained last stage, not silenced."""
    from greenpc.train import loop

    starts = {}
    real = loop.make_epoch

    def recording(config, arch, stage, *args):
        epoch = real(config, arch, stage, *args)

        def wrapped(params, opt_state, step):
            starts.setdefault(stage.name, (stage, params))
            return epoch(params, opt_state, step)
        return wrapped

    monkeypatch.setattr(loop, "make_epoch", recording)
    config = cfg.from_options({**TINY, "train_output": str(tmp_path / "tiny.gpc")})
    train(config, log=lambda *a: None)
    arch = config.architecture()
    initial = init_params(arch, int(TINY["train_seed"]))
    x = jnp.asarray(np.linspace(0.05, 0.95, 7)[:, None], jnp.float32)
    y = jnp.asarray(np.linspace(0.9, 0.1, 7)[:, None], jnp.float32)

    def change(params, k):
        before, after = (np.asarray(jax.vmap(pair_function(arch, stages=j, dd=False),
                                             in_axes=(None, 0, 0, None))(params, x, y, jnp.zeros(0)))
                         for j in (k, k + 1))
        return np.max(np.abs(after - before)) / np.max(np.abs(before))

    first = starts["eps=0.01"][1]
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(first["stage_0"]),
                                                    jax.tree_util.tree_leaves(initial["stage_0"])))
    stage, params = starts["eps=0.005"]
    assert stage.active == 2 and change(params, 1) == 0.0
    assert change(initial, 1) > 1e-4
    experts = starts["dd Q=2"][1]["experts"]
    assert all(np.abs(experts[b]["output"]["kernel"]).max() > 0 for b in ("near", "middle"))


def test_default_epochs_follow_the_stages():
    options = {k: v for k, v in TINY.items() if k != "train_epochs"}
    plain = cfg.from_options({**options, "train_subdomains": "1"}).stages()
    assert [s.steps for s in plain] == [500 * 5, 500 * 5]
    dd = cfg.from_options(options).stages()
    assert [s.steps for s in dd if s.kind == "pde"] == [500 * 5, 500 * 5, 3000 * 5]


def test_parametric_configuration_takes_parameter_features():
    config = cfg.from_options({**TINY, "problem": "rotlap2d", "train_param": "theta=0:3.14159:periodic",
                               "train_anchor_params": "theta=0:1.5", "train_subdomains": "3"})
    arch = config.architecture()
    assert arch.n_features == 2 and arch.gate_input == "params"
    assert config.fixed_params == {"xi": 0.1}


def makefile_training_options(name, variable=None):
    """The -train_* and preset options of `make train-NAME` (the Makefile variable TRAIN_ARGS_NAME, or
    ``variable``), read from the Makefile itself."""
    import re
    import shlex

    text = open(os.path.join(ROOT, "Makefile")).read().replace("\\\n", " ")
    variables = dict(re.findall(r"^(\w+) :=[ \t]*(.*)$", text, re.M))
    args = variables.get(variable or f"TRAIN_ARGS_{name}", "")
    args = re.sub(r"\$\((\w+)\)", lambda m: variables[m.group(1)], args)
    words, options = shlex.split(args), {}
    for flag, value in zip(words[::2], words[1::2]):
        options[flag.lstrip("-")] = value
    return options


# rotlap2d is trained in two runs (Makefile): the first one's checkpoint is rotlap2d-base.ckpt, the
# fine-tuning's the model's own
CHECKPOINTS = [(name, None, None) for name in ("react2d", "conv2d", "helmholtz1d", "helmholtz2d")] + [
    ("rotlap2d", None, "rotlap2d-base.ckpt"), ("rotlap2d", "ROTLAP_FINETUNE", None)]


@pytest.mark.parametrize("name,variable,checkpoint", CHECKPOINTS,
                         ids=[f"{n}-{v or c or 'model'}" for n, v, c in CHECKPOINTS])
def test_the_committed_checkpoints_resume_with_the_makefiles_options(name, variable, checkpoint):
    """`make train-NAME` resumes greenpc/models/NAME.gpc.ckpt: an option added since (off by default)
    must not change the fingerprint of the runs that wrote those checkpoints."""
    options = makefile_training_options(name, variable)
    if checkpoint:
        options["train_checkpoint"] = f"{ROOT}/greenpc/models/{checkpoint}"
    config = cfg.from_options({"problem": name, "train_output": f"{ROOT}/greenpc/models/{name}.gpc", **options})
    state = ckpt.load(config)
    assert state is not None and state["step"] > 0
    assert '"modes"' not in cfg.from_options({"problem": name}).fingerprint()


def test_fine_tuning_starts_from_the_model_and_trains_only_the_final_network(tmp_path, monkeypatch):
    """-train_init: the final stage starts from the file's network (bit for bit, no expert copy, no
    silenced branches) at the step the earlier stages would have ended, on another medium (shifted1d,
    k2 = 50 -> 80). It starts far closer to the new solution than a run from random parameters does to its own,
    and a file of another network or preset is refused with the option's name."""
    from greenpc.options import OptionError
    from greenpc.train import loop

    tiny = {**TINY, "problem": "shifted1d"}
    starts, firsts = {}, {}
    real = loop.make_epoch

    def recording(config, arch, stage, *args):
        epoch = real(config, arch, stage, *args)

        def wrapped(params, opt_state, step):
            out = epoch(params, opt_state, step)
            starts.setdefault((config.output, stage.name), (int(step), params))
            firsts.setdefault((config.output, stage.name), float(out[2]["total"]))
            return out
        return wrapped

    monkeypatch.setattr(loop, "make_epoch", recording)
    source, tuned = str(tmp_path / "k50.gpc"), str(tmp_path / "k80.gpc")
    train(cfg.from_options({**tiny, "k2": "50", "train_output": source}), log=lambda *a: None)
    config = cfg.from_options({**tiny, "k2": "80", "train_output": tuned, "train_init": source})
    _, record = train(config, log=lambda *a: None)
    assert [name for out, name in starts if out == tuned] == ["dd Q=2"]
    step, params = starts[(tuned, "dd Q=2")]
    assert step == 2 * 30 + 10 and record["steps"] == 100
    flat, start = weights.flatten(weights.load(source).params), weights.flatten(params)
    assert flat.keys() <= start.keys()
    assert all(np.array_equal(v, np.asarray(start[k])) for k, v in flat.items())
    assert record["fine_tuned_from"]["file"] == source
    assert weights.load(tuned).architecture == config.architecture()
    # the loss of the fine-tuned stage's first epoch against that of a run from random parameters
    assert firsts[(tuned, "dd Q=2")] < 0.1 * firsts[(source, "eps=0.01")]
    with pytest.raises(OptionError, match=r"-train_init .*widths \[4, 5\] \(this run: \[4, 6\]\)"):
        train(cfg.from_options({**tiny, "train_widths": "4,6", "train_output": tuned,
                                "train_init": str(source)}), log=lambda *a: None)
    with pytest.raises(OptionError, match=r"-train_init .*for 'shifted1d', this run trains 'react1d'"):
        train(cfg.from_options({**TINY, "train_output": tuned, "train_init": str(source)}),
              log=lambda *a: None)
