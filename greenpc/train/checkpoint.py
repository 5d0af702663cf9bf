"""Training checkpoints: parameters, optimizer state and position, in safetensors (never pickle).

Written atomically (``greenpc.weights.atomic_write``); a checkpoint records the configuration's
fingerprint and is only resumed by the same configuration.
"""
import json
import os

import jax
import numpy as np

from ..weights import atomic_write, flatten, unflatten

FORMAT = "greenpc-checkpoint"


def save(config, params, opt_state, stage, epoch, step, history, elapsed):
    """Checkpoint at (stage, epoch); ``opt_state`` None means the stage is finished."""
    from safetensors.numpy import save as to_bytes

    arrays = {f"params/{k}": np.asarray(v) for k, v in flatten(params).items()}
    if opt_state is not None:
        for i, leaf in enumerate(jax.tree_util.tree_leaves(opt_state)):
            arrays[f"opt/{i:05d}"] = np.asarray(leaf)
    state = {"stage": stage, "epoch": epoch, "step": step, "history": history, "elapsed": elapsed,
             "fingerprint": config.fingerprint(), "has_opt": opt_state is not None}
    atomic_write(config.checkpoint, to_bytes({k: np.ascontiguousarray(v) for k, v in arrays.items()},
                                             metadata={"format": FORMAT, "state": json.dumps(state)}))


def load(config):
    """The saved state, or None when there is no checkpoint; refuses another configuration's."""
    from safetensors import safe_open

    path = config.checkpoint
    if not os.path.exists(path):
        return None
    with safe_open(path, framework="numpy") as handle:
        metadata = handle.metadata() or {}
        if metadata.get("format") != FORMAT:
            raise ValueError(f"checkpoint {path} is not a greenpc checkpoint")
        arrays = {k: handle.get_tensor(k) for k in handle.keys()}
    state = json.loads(metadata["state"])
    if state["fingerprint"] != config.fingerprint():
        raise ValueError(f"checkpoint {path} was written by a different training configuration; "
                         "remove it or train with the same options")
    params = unflatten({k[len("params/"):]: jax.numpy.asarray(v) for k, v in arrays.items()
                        if k.startswith("params/")})
    opt = [arrays[k] for k in sorted(arrays) if k.startswith("opt/")]
    state.update(params=params, opt_leaves=opt if state["has_opt"] else None)
    return state


def restore_tree(template, leaves):
    """``template``'s structure filled with saved leaves (same optimizer, same parameters)."""
    structure = jax.tree_util.tree_structure(template)
    if structure.num_leaves != len(leaves):
        raise ValueError("checkpoint optimizer state does not match this configuration")
    return jax.tree_util.tree_unflatten(structure, [jax.numpy.asarray(l) for l in leaves])
