"""A learned kernel leaves out the DD experts that a gate over the parameters barely weighs."""
import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenpc import models, weights
from greenpc.kernels.base import KernelError
from greenpc.kernels.learned import LearnedKernel, gate_weights, kept_experts
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


def test_gate_weights_are_the_networks_gate(tmp_path):
    """The numpy gate the kernel prunes with is the flax gate the network mixes its experts with."""
    import jax.numpy as jnp

    from greenpc.model.network import MLP, Jet

    model = parametric_dd_model(tmp_path)
    a = model.architecture
    for theta in (0.0, 0.6, 2.0):
        feats = np.array([np.cos(2 * theta), np.sin(2 * theta)])
        logits = MLP(a.aux_width, a.aux_depth, out=a.subdomains).apply(
            {"params": model.params["gate"]}, Jet(jnp.asarray(feats, jnp.float32))).value
        expected = np.asarray(jax.nn.softmax(logits), np.float64)
        assert np.allclose(gate_weights(model, feats), expected, rtol=1e-5, atol=1e-7)
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
