"""Training checkpoints: parameters, optimizer state and position, in safetensors (never pickle).

Written atomically (``greenpc.weights.atomic_write``: temporary file, fsync, rename), so a run killed at
any moment leaves the previous checkpoint or the new one, never a half file. A checkpoint records the
configuration's fingerprint and is only resumed by the same configuration; its arrays are checked
against the parameters and optimizer state that configuration builds before training continues.
"""
import json
import os

import jax
import numpy as np

from ..weights import atomic_write, flatten, unflatten

FORMAT = "greenpc-checkpoint"
STATE_FIELDS = ("stage", "epoch", "step", "history", "elapsed", "fingerprint", "has_opt")


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed; the message names the file and what to do."""


def save(config, params, opt_state, stage, epoch, step, history, elapsed):
    """Checkpoint at (stage, epoch); ``opt_state`` None means the stage is finished."""
    from safetensors.numpy import save as to_bytes

    # np.asarray(order="C"), not np.ascontiguousarray: that one turns the optimizer's scalar step
    # counts into shape (1,) arrays, which resume with other shapes than the uninterrupted run has
    arrays = {f"params/{k}": np.asarray(v, order="C") for k, v in flatten(params).items()}
    if opt_state is not None:
        for i, leaf in enumerate(jax.tree_util.tree_leaves(opt_state)):
            arrays[f"opt/{i:05d}"] = np.asarray(leaf, order="C")
    state = {"stage": stage, "epoch": epoch, "step": step, "history": history, "elapsed": elapsed,
             "fingerprint": config.fingerprint(), "has_opt": opt_state is not None}
    atomic_write(config.checkpoint, to_bytes(arrays, metadata={"format": FORMAT,
                                                               "state": json.dumps(state)}))


def _fail(path, message):
    raise CheckpointError(f"checkpoint {path}: {message}; remove it to train from the start")


def load(config):
    """The saved state, or None when there is no checkpoint; refuses another configuration's."""
    from safetensors import SafetensorError, safe_open

    path = config.checkpoint
    if not os.path.exists(path):
        return None
    try:
        with safe_open(path, framework="numpy") as handle:
            metadata = handle.metadata() or {}
            if metadata.get("format") != FORMAT:
                _fail(path, f"is not a greenpc checkpoint (format {metadata.get('format')!r}, "
                            f"expected {FORMAT!r})")
            arrays = {k: handle.get_tensor(k) for k in handle.keys()}
    except (SafetensorError, OSError) as err:
        _fail(path, f"cannot be read ({err})")
    try:
        state = json.loads(metadata.get("state", ""))
    except (ValueError, RecursionError):
        _fail(path, "has a state record that is not valid JSON")
    if not isinstance(state, dict) or any(f not in state for f in STATE_FIELDS):
        _fail(path, f"has a state record without {', '.join(STATE_FIELDS)}")
    if state["fingerprint"] != config.fingerprint():
        raise CheckpointError(f"checkpoint {path} was written by a different training configuration; "
                              "remove it or train with the same options")
    saved = {k[len("params/"):]: v for k, v in arrays.items() if k.startswith("params/")}
    _check_params(path, config, saved)
    params = unflatten({k: jax.numpy.asarray(v) for k, v in saved.items()})
    opt = [arrays[k] for k in sorted(arrays) if k.startswith("opt/")]
    state.update(params=params, opt_leaves=opt if state["has_opt"] else None)
    return state


def _check_params(path, config, saved):
    """The saved parameters have exactly the names, shapes and dtypes this configuration trains."""
    from ..model.network import init_params

    arch = config.architecture()
    template = flatten(jax.eval_shape(lambda: init_params(arch, 0)))
    expected = {k: (tuple(v.shape), np.dtype(v.dtype)) for k, v in template.items()}
    found = {k: (tuple(v.shape), v.dtype) for k, v in saved.items()}
    if found != expected:
        wrong = sorted(set(found) ^ set(expected)) or sorted(k for k in found if found[k] != expected[k])
        _fail(path, f"holds parameters that do not match the configuration (first: {wrong[:3]})")


def restore_tree(template, leaves):
    """``template``'s structure filled with saved leaves (same optimizer, same parameters)."""
    structure = jax.tree_util.tree_structure(template)
    expected = jax.tree_util.tree_leaves(template)
    if structure.num_leaves != len(leaves) or any(
            np.shape(a) != np.shape(b) or np.result_type(a) != np.result_type(b)
            for a, b in zip(expected, leaves)):
        raise CheckpointError("checkpoint optimizer state does not match this configuration; "
                              "remove the checkpoint to train from the start")
    return jax.tree_util.tree_unflatten(structure, [jax.numpy.asarray(l) for l in leaves])
