"""Tiny weight files for the fault tests: untrained networks (no training needed), written in a second."""
import numpy as np

from greenpc import weights
from greenpc.model import Architecture

DOMAINS = {1: [[0.0], [1.0]], 2: [[0.0, 0.0], [1.0, 1.0]]}


def architecture(dim=1, n_features=0, subdomains=1):
    return Architecture(dim=dim, epsilons=(0.01,), widths=(3,), alpha0=(1.0,), n_features=n_features,
                        depth=1, far_width=4, aux_width=2, aux_depth=1, subdomains=subdomains,
                        gate_input="params" if n_features and subdomains > 1 else "source")


def write(path, name="shifted1d", dim=1, params=None, trained=None, domain=None, seed=0,
          subdomains=1):
    """A valid .gpc file of an untrained tiny network for preset ``name``; returns its path."""
    from greenpc import problems
    from greenpc.model.network import final_params, init_params

    trained = trained or {}
    preset = problems.get(name)
    n_features = len(preset.features({**preset.params, **{k: 0.0 for k in trained}})) if trained else 0
    arch = architecture(dim, n_features, subdomains)
    problem = {"name": name, "params": dict(preset.params if params is None else params),
               "trained_params": trained, "domain": domain or DOMAINS[dim]}
    for key in trained:
        problem["params"].pop(key, None)
    params = final_params(arch, init_params(arch, seed))
    params = weights.unflatten({k: np.asarray(v, np.float32)  # float32 even in JAX's x64 mode
                                for k, v in weights.flatten(params).items()})
    weights.save(path, arch, problem, params, {"steps": 0})
    return str(path)
