"""A learned kernel leaves out the DD experts that a gate over the parameters barely weighs."""
import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenpc import models, weights
from greenpc.kernels.base import KernelError
from greenpc.kernels.learned import LearnedKernel, kept_experts
from greenpc.model.architecture import Architecture
from greenpc.model.network import final_params, init_params


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(1e-9, 1.0), min_size=1, max_size=12), st.floats(0.0, 0.5))
def test_kept_experts_are_the_fewest_largest_whose_rest_weighs_at_most_tol(raw, tol):
    w = np.asarray(raw) / np.sum(raw)
    kept = kept_experts(w, tol)
    left = np.setdiff1d(np.arange(len(w)), kept)
    assert len(kept) >= 1 and np.all(np.diff(kept) > 0)
    assert w[left].sum() <= tol or len(kept) == 1
    if len(left):
        assert w[kept].min() >= w[left].max()          # the largest are kept
    if len(kept) > 1:                                    # and no fewer would do
        assert w[left].sum() + w[kept].min() > tol


def parametric_dd_model(tmp_path, favourite=None):
    """A random 2D model whose gate sees two parameter features; ``favourite`` gets all the weight."""
    arch = Architecture(dim=2, epsilons=(1e-2, 5e-3), widths=(4, 5), alpha0=(0.0, 0.0), n_features=2,
                        far_width=6, subdomains=4, gate_input="params")
    # float32 whatever JAX's precision is (a test earlier in the run may have switched it to 64 bits)
    params = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float32), dict(init_params(arch, 0)))
    if favourite is not None:
        bias = np.zeros(arch.subdomains, np.float32)
        bias[favourite] = 60.0
        params["gate"] = {**params["gate"], "output": {**params["gate"]["output"], "bias": bias}}
    path = str(tmp_path / "dd.gpc")
    weights.save(path, arch, {"name": "rotlap2d", "params": {"xi": 0.1},
                              "trained_params": {"theta": {"low": 0.0, "high": np.pi,
                                                           "period": np.pi}},
                              "domain": [[0.0, 0.0], [1.0, 1.0]]},
                 final_params(arch, params), {"steps": 0})
    return weights.load(path)


def test_a_gate_on_one_expert_evaluates_that_expert_alone(tmp_path):
    model = parametric_dd_model(tmp_path, favourite=2)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0.05, 0.95, (500, 2)), rng.uniform(0.05, 0.95, (500, 2))
    full = LearnedKernel(model, {"theta": 0.3}, gate_tol=0.0)
    one = LearnedKernel(model, {"theta": 0.3})
    assert full.experts[0] == 4 and one.experts[0] == 1 and "1 of 4 experts" in one.describe()
    assert np.allclose(one(x, y), full(x, y), rtol=1e-5, atol=1e-6 * np.abs(full(x, y)).max())


def test_the_network_is_the_gate_weighted_sum_of_its_one_expert_models(tmp_path):
    """G = sum_q r_q G_q, G_q the model with expert q alone: the gate weights the kernel prunes with
    are the ones the network mixes its experts with, and a model cut to one expert is that expert."""
    import jax.numpy as jnp

    from greenpc.kernels.learned import without_experts
    from greenpc.model.network import gate_weights, pair_function

    model = parametric_dd_model(tmp_path)
    rng = np.random.default_rng(2)
    x, y = (jnp.asarray(rng.uniform(0.05, 0.95, (300, 2)), jnp.float32) for _ in range(2))

    def values(arch, params, feats):
        return np.asarray(jax.vmap(pair_function(arch), in_axes=(None, 0, 0, None))(params, x, y, feats))

    for theta in (0.0, 0.6, 2.0):
        feats = jnp.asarray([np.cos(2 * theta), np.sin(2 * theta)], jnp.float32)
        r = np.asarray(gate_weights(model.architecture, model.params, feats))
        mixed = sum(r[q] * values(*without_experts(model, [q]), feats) for q in range(len(r)))
        full = values(model.architecture, model.params, feats)
        assert np.allclose(mixed, full, rtol=1e-4, atol=1e-5 * np.abs(full).max())
    with pytest.raises(KernelError, match="gate_tol"):
        LearnedKernel(model, {"theta": 0.3}, gate_tol=1.5)


@pytest.mark.parametrize("k2", [50.0, 300.0, 1000.0])
def test_the_shipped_helmholtz_model_changes_by_less_than_1e5_without_its_light_experts(k2):
    """helmholtz1d's gate over k2 keeps 2-5 of its 9 experts at the default tolerance (measured); the
    kernel moves by at most 5e-6 relative (float32 rounding is about 3e-8)."""
    model = weights.load(models.path("helmholtz1d"))
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0.01, 0.99, (20000, 1)), rng.uniform(0.01, 0.99, (20000, 1))
    full = LearnedKernel(model, {"k2": k2}, gate_tol=0.0)
    part = LearnedKernel(model, {"k2": k2})
    assert full.experts[0] == 9 and part.experts[0] < 9 and part.experts[2] <= 1e-3
    a, b = full(x, y), part(x, y)
    assert np.linalg.norm(a - b) / np.linalg.norm(a) < 1e-5
