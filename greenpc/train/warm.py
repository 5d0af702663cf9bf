"""Fine-tuning (-train_init): a run that starts from a trained model instead of random parameters.

The network of another weight file of the same preset and architecture (the same family in another
medium, say) becomes the initial network, and only the final stage runs: the DD stage, or the last
epsilon stage without DD, with every group of the final network trainable. The earlier stages count as
done, so the run starts at their steps: the anchor weight's decay, the batches and the progress bar
continue from there as if the file's network had been trained by this run's earlier stages.
"""
from .. import models, weights
from ..options import OptionError


def source_model(config, arch):
    """The weight file -train_init names, checked against this run's preset, parameters and network."""
    text = config.options["init"]
    try:
        model = weights.load(models.resolve(text))
    except (OSError, weights.WeightFileError) as err:
        raise OptionError(f"-train_init {text}: {err}") from None
    name = model.problem.get("name")
    if name != config.problem:
        raise OptionError(f"-train_init {text}: the model is for {name!r}, this run trains "
                          f"{config.problem!r}")
    inputs = sorted(model.problem.get("trained_params", {}))
    if inputs != sorted(config.trained_params):
        raise OptionError(f"-train_init {text}: the model takes the parameters {inputs or 'none'}, this "
                          f"run {sorted(config.trained_params) or 'none'}")
    if model.architecture != arch:
        theirs, ours = model.architecture.to_dict(), arch.to_dict()
        differ = ", ".join(f"{k} {theirs[k]} (this run: {ours[k]})" for k in ours if theirs[k] != ours[k])
        raise OptionError(f"-train_init {text}: the model's network differs from this run's: {differ}")
    return model


def initial_state(config, arch, stages, initial):
    """(parameters, stage index, step) of a run fine-tuning -train_init's model.

    ``initial`` are this run's initial parameters: they fill what a DD weight file does not hold (the
    last plain stage, which the final network does not evaluate).
    """
    import jax
    import jax.numpy as jnp

    model = source_model(config, arch)
    params = {**initial, **jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), model.params)}
    last = len(stages) - 1      # the stage that trains the final network (DD or the last epsilon)
    return params, last, sum(s.steps for s in stages[:last])


def provenance(config):
    """What the training record says about the model a fine-tuned run started from."""
    model = source_model(config, config.architecture())
    return {"file": config.options["init"], "checksum": model.record["checksum"],
            "command": model.record.get("training", {}).get("command")}

