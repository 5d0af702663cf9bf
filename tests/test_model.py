"""The alphaMSNN: ordering constraints, the forward Laplacian against autodiff, the operator L."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenpc import problems
from greenpc.model import Architecture
from greenpc.model.network import init_params, pair_function, pair_jet, scale_exponents, stage_exponents
from greenpc.problems.operator import apply_from_derivatives, apply_operator, coefficients

ARCH_2D = Architecture(dim=2, epsilons=(1e-2, 5e-3), widths=(6, 7), alpha0=(0.0, 0.0),
                       far_width=8, subdomains=3)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-30, 30), min_size=4, max_size=4), st.floats(-3, 3))
def test_branch_ordering_holds_for_any_raw_outputs(raw, alpha0):
    alpha, beta = scale_exponents(jnp.asarray(raw, jnp.float64), alpha0)
    # beta decreasing and alpha non-decreasing across the branches of a stage (section 3.4);
    # float32 saturation at |raw| ~ 30 may make them equal, never reversed
    assert float(beta[1]) <= float(beta[0]) and float(alpha[1]) >= float(alpha[0])
    assert 0.0 <= float(beta[1]) and 0.5 <= float(beta[0]) <= 1.5


@pytest.mark.parametrize("seed", range(5))
def test_ordering_for_random_network_parameters(seed):
    params = init_params(ARCH_2D, seed)
    key = jax.random.PRNGKey(seed)
    params = jax.tree_util.tree_map(lambda a: a + jax.random.normal(key, a.shape), params)
    y = jax.random.uniform(jax.random.PRNGKey(seed + 1), (50, 2))
    for k in range(ARCH_2D.stages):
        exponents = jax.jit(jax.vmap(lambda s: stage_exponents(ARCH_2D, params, k, s, jnp.zeros(0))))
        alpha, beta = exponents(y)
        assert bool(jnp.all(beta[:, 1] < beta[:, 0])) and bool(jnp.all(alpha[:, 1] >= alpha[:, 0]))


def test_boundary_factor_vanishes_on_the_boundary():
    arch = Architecture(**{**ARCH_2D.to_dict(), "boundary_layer": True})
    g = jax.jit(jax.vmap(pair_function(arch), (None, 0, None, None)))
    params = init_params(arch, 0)
    edge = jnp.array([[0.0, 0.3], [1.0, 0.7], [0.4, 0.0], [0.2, 1.0]])
    inside = g(params, jnp.array([[0.5, 0.5]]), jnp.array([0.4, 0.6]), jnp.zeros(0))
    assert np.allclose(g(params, edge, jnp.array([0.4, 0.6]), jnp.zeros(0)), 0.0, atol=1e-7)
    assert abs(float(inside[0])) > 1e-4


def test_near_branch_starts_at_beta_one_and_alpha0():
    arch = Architecture(dim=1, epsilons=(1e-2,), widths=(4,), alpha0=(0.7,), far_width=4)
    alpha, beta = stage_exponents(arch, init_params(arch, 3), 0, jnp.array([0.3]), jnp.zeros(0))
    assert np.isclose(float(beta[0]), 1.0) and np.isclose(float(alpha[0]), 0.7)


@pytest.mark.parametrize("name,params,layer", [("react2d", {}, False), ("conv2d", {}, True),
                                               ("rotlap2d", {"theta": 0.6, "xi": 0.1}, True),
                                               ("conv1d", {}, True)])
def test_forward_laplacian_matches_nested_autodiff(name, params, layer):
    """The residual from the network's Jet equals L applied by jvp-over-jvp to the same network."""
    problem = problems.get(name)
    arch = ARCH_2D if problem.dim == 2 else Architecture(
        dim=1, epsilons=(1e-2, 1e-3), widths=(5, 6), alpha0=(1.0, 1.0), far_width=8, subdomains=2)
    arch = Architecture(**{**arch.to_dict(), "boundary_layer": layer})
    jax.config.update("jax_enable_x64", True)
    try:
        weights = init_params(arch, 1, jnp.float64)
        weights = jax.tree_util.tree_map(
            lambda a: a + 0.3 * jax.random.normal(jax.random.PRNGKey(2), a.shape, a.dtype), weights)
        value, jet = pair_function(arch), pair_jet(arch)
        feats = jnp.zeros(0)

        def both(x, y):
            reference = apply_operator(problem, lambda z: value(weights, z, y, feats), x, params)
            coeffs = coefficients(problem, x, params)
            g = jet(weights, x, y, feats, coeffs[0])
            forward = apply_from_derivatives(problem, coeffs, g.value, g.grad, g.lap)
            return forward, reference, g.value, value(weights, x, y, feats)

        rng = np.random.default_rng(0)
        xs, ys = (jnp.asarray(rng.uniform(size=(5, problem.dim))) for _ in range(2))
        forward, reference, jet_value, plain = jax.jit(jax.vmap(both))(xs, ys)
        assert np.allclose(forward, reference, rtol=1e-9, atol=1e-9)
        assert np.allclose(jet_value, plain, rtol=1e-12)
    finally:
        jax.config.update("jax_enable_x64", False)


def test_operator_matches_the_analytic_formula():
    """L u for u = sin(pi x) e^x with the conv1d and react1d coefficients, written out by hand."""
    jax.config.update("jax_enable_x64", True)
    try:
        x = np.linspace(0.05, 0.95, 7)
        u = np.sin(np.pi * x) * np.exp(x)
        du = np.exp(x) * (np.sin(np.pi * x) + np.pi * np.cos(np.pi * x))
        d2u = np.exp(x) * (2 * np.pi * np.cos(np.pi * x) + (1 - np.pi ** 2) * np.sin(np.pi * x))
        expected = {"conv1d": -0.01 * d2u + (1 + x ** 2) * du,
                    "react1d": -d2u - 50 * (1 + x ** 2) * u}
        fn = lambda z: jnp.sin(jnp.pi * z[0]) * jnp.exp(z[0])  # noqa: E731
        for name, values in expected.items():
            problem = problems.get(name)
            got = [float(apply_operator(problem, fn, jnp.array([xi]))) for xi in x]
            assert np.allclose(got, values, rtol=1e-10)
    finally:
        jax.config.update("jax_enable_x64", False)


def test_variable_tensor_operator_includes_the_divergence_of_a():
    """-div(a grad u) for conv2d's a = 0.01 (1 + |x|^2) I: the first-order term comes from grad a."""
    jax.config.update("jax_enable_x64", True)
    try:
        problem = problems.get("conv2d")
        fn = lambda z: z[0] ** 2 * z[1]  # noqa: E731  grad = (2 x y, x^2), lap = 2 y
        x, y = 0.3, 0.7
        a = 0.01 * (1 + x * x + y * y)
        grad_a = 0.01 * np.array([2 * x, 2 * y])
        grad_u = np.array([2 * x * y, x * x])
        b = np.array([1 + y * y, 1 + x * x])
        expected = -a * 2 * y - grad_a @ grad_u + b @ grad_u
        got = float(apply_operator(problem, fn, jnp.array([x, y])))
        assert np.isclose(got, expected, rtol=1e-12)
    finally:
        jax.config.update("jax_enable_x64", False)
