"""The trained network's value G(x, y) for a batch of pairs, laid out features x pairs for the CPU.

``network.AlphaMSNN`` is written for one pair and vmapped, which XLA lays out pairs x features: every
layer is a (pairs, n) @ (n, width) product with width 10-50, and on the 2-core test machine those ran
at a third of the tanh rate. The same layers as (width, n) @ (n, pairs), the pairs along the contiguous
axis, run near it (`bench/kernel_flops.py`): this module evaluates the network that way, from the same
parameters, without derivatives (for training, ``network`` carries the Laplacian). The DD experts are
evaluated one after another rather than as one batched product, which XLA's CPU back end runs slower.

Equal to ``network.pair_function`` up to float rounding (summation order): tests/test_model_inference.py.
"""
import jax
import jax.numpy as jnp

from .network import boundary_factor, centred, scale_exponents


def mlp(p, z, depth):
    """tanh hidden layers and a linear output on z (n, pairs): (out, pairs)."""
    for i in range(depth):
        layer = p[f"hidden_{i}"]
        z = jnp.tanh(layer["kernel"].T @ z + layer["bias"][:, None])
    return p["output"]["kernel"].T @ z + p["output"]["bias"][:, None]


def stage(p, arch, k, x, y, source):
    """The near and middle branches of stage k (eq. 27) at pairs x, y (d, pairs): (pairs,)."""
    raw = mlp(p["scales"], source, arch.aux_depth)                    # (4, pairs)
    alpha, beta = scale_exponents(raw.T, arch.alpha0[k])              # (pairs, 2) each
    log_eps = jnp.log(jnp.asarray(arch.epsilons[k], x.dtype))
    total = 0.0
    for j, name in enumerate(("near", "middle")):
        u = jnp.concatenate([(x - y) * jnp.exp(-beta[:, j] * log_eps), source])
        total = total + mlp(p[name], u, arch.depth)[0] * jnp.exp(alpha[:, j] * log_eps)
    return total


def network(arch):
    """``g(params, x, y, feats) -> G`` for x, y (pairs, d) and feats (n_features,): (pairs,)."""

    def g(params, x, y, feats):
        x, y = x.T, y.T
        pairs = x.shape[1]
        f = jnp.broadcast_to(feats[:, None], (feats.shape[0], pairs))
        source = jnp.concatenate([centred(y), f])
        out = mlp(params["far"], jnp.concatenate([(x - 0.5) * 2.0, source]), arch.depth)[0]
        dd = arch.domain_decomposition
        for k in range(arch.stages - 1 if dd else arch.stages):
            out = out + stage(params[f"stage_{k}"], arch, k, x, y, source)
        if dd:
            z = centred(y) if arch.gate_input == "source" else f
            weights = jax.nn.softmax(mlp(params["gate"], z, arch.aux_depth), axis=0)   # (Q, pairs)
            k = arch.stages - 1
            for q in range(arch.subdomains):
                expert = jax.tree_util.tree_map(lambda a: a[q], params["experts"])
                out = out + weights[q] * stage(expert, arch, k, x, y, source)
        if arch.boundary_layer:
            # network's own factor, its value only: x[k] is a row of pairs
            out = boundary_factor(x, jnp.exp(params["boundary"]), None).value[0] * out
        return out

    return g
