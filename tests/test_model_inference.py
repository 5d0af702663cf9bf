"""The features-by-pairs evaluator (model/inference.py) is the network of model/network.py."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from greenpc import models, weights
from greenpc.kernels.learned import LearnedKernel
from greenpc.model.architecture import Architecture
from greenpc.model.inference import network
from greenpc.model.network import final_params, init_params, pair_function

ARCHITECTURES = {
    "1d-source-gate": Architecture(dim=1, epsilons=(1e-2, 1e-3), widths=(4, 6), alpha0=(0.0, 0.5),
                                   far_width=7, subdomains=3, gate_input="source"),
    "2d-params-gate-boundary": Architecture(dim=2, epsilons=(1e-2, 5e-3), widths=(4, 5),
                                            alpha0=(-0.5, 0.2), n_features=2, far_width=6, subdomains=4,
                                            gate_input="params", boundary_layer=True),
    "2d-plain-features": Architecture(dim=2, epsilons=(1e-2,), widths=(5,), alpha0=(0.1,), n_features=3,
                                      far_width=8, subdomains=1),
}


def reference(arch, params, x, y, feats):
    """The network as training evaluates it: one pair at a time, vmapped."""
    return jax.vmap(pair_function(arch), in_axes=(None, 0, 0, None))(params, x, y, feats)


def float32(tree):
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), tree)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_random_networks_agree_to_float32_rounding(name):
    arch = ARCHITECTURES[name]
    rng = np.random.default_rng(1)
    # perturb every parameter, the zero-initialized output layers and biases included, so that each
    # branch, scale network, gate and boundary width moves the result
    params = jax.tree_util.tree_map(lambda a: np.asarray(a) + 0.3 * rng.standard_normal(np.shape(a)),
                                    final_params(arch, init_params(arch, 0)))
    params = float32(params)
    x = jnp.asarray(rng.uniform(0.02, 0.98, (700, arch.dim)), jnp.float32)
    y = jnp.asarray(rng.uniform(0.02, 0.98, (700, arch.dim)), jnp.float32)
    feats = jnp.asarray(rng.uniform(-1, 1, arch.n_features), jnp.float32)
    want = np.asarray(reference(arch, params, x, y, feats), np.float64)
    got = np.asarray(jax.jit(network(arch))(params, x, y, feats), np.float64)
    assert got.shape == want.shape == (700,)
    assert np.std(want) > 1e-2 * np.abs(want).max()        # a non-trivial function of the pair
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def shipped(name):
    model = weights.load(models.path(name))
    trained = model.problem.get("trained_params", {})
    return model, {k: 0.5 * (spec["low"] + spec["high"]) for k, spec in trained.items()}


@pytest.mark.parametrize("name", models.names())
def test_shipped_models_agree_to_float32_rounding(name):
    """LearnedKernel (the evaluator, with the experts its gate keeps) against the vmapped pair function
    of the whole network, on pairs near and far apart."""
    model, values = shipped(name)
    kernel = LearnedKernel(model, values, chunk=1024)
    rng = np.random.default_rng(2)
    d = kernel.dim
    y = rng.uniform(0.05, 0.95, (1500, d))
    x = np.concatenate([rng.uniform(0.05, 0.95, (1000, d)), y[1000:] + rng.uniform(-0.01, 0.01, (500, d))])
    got = kernel(x, y)
    arch = model.architecture
    want = np.asarray(reference(arch, float32(model.params), jnp.asarray(x, jnp.float32),
                                jnp.asarray(y, jnp.float32), jnp.asarray(kernel.features, jnp.float32)),
                      np.float64)
    if kernel.split is not None:
        want = want + kernel.split.kernel(x, y, kernel.split_values, kernel.spacing)
    scale = np.abs(want).max()
    # the experts a gate over the parameters leaves out weigh at most the gate tolerance (1e-5 relative
    # in test_learned_kernel); everything else is float32 rounding
    assert np.abs(got - want).max() <= 2e-5 * scale
