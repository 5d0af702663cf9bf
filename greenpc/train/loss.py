"""The training loss (eq. 37): residual (eq. 33), boundary (eq. 38) and anchor (eq. 36) terms.

The residual L_x G - N_eps comes from the network's forward Laplacian (``model.network.Jet``) and the
preset's coefficients (full tensor a, its divergence, b, c). Every term is made relative, so the weights
compare like with like:

- ``residual_norm = "relative"`` (default): each residual is divided by the size of what it is measured
  against, s_L |G| + N_eps(x, y): s_L |G| is L applied to a smooth function of the kernel's size
  (operator scale x RMS of the anchor values) and N_eps the source there. Far from the source a relative
  error delta of a smooth G costs about delta^2, as in the anchor term; at the source the fit of the
  Gaussian is measured relative to its height. One formula for every pair, whichever sample it came from;
- ``"source"`` multiplies every residual by (eps sqrt(pi))^d (the source's peak is 1), ``"none"`` leaves
  them raw;
- with the free-space part split off (``-train_free_space``) the network's PDE has no source, and the
  relative divisor is s_L |G| alone;
- boundary and anchor terms are divided by the RMS of the anchor values.
"""
import jax
import jax.numpy as jnp

from ..model.network import MLP, Jet, centred, pair_function, pair_jet
from ..problems.operator import apply_from_derivatives, coefficients


def gaussian(x, y, epsilon):
    """N_eps(x, y) of eq. 15."""
    d = x.shape[-1]
    return (1.0 / (epsilon * jnp.sqrt(jnp.pi))) ** d * jnp.exp(-jnp.sum((x - y) ** 2, -1) / epsilon ** 2)


def parameter_dicts(config):
    """``raw (n_trained,) -> (features, coefficient parameters)`` for one pair."""
    preset = config.preset
    names = sorted(config.trained_params)

    def split(raw):
        values = {**config.fixed_params, **{n: raw[i] for i, n in enumerate(names)}}
        features = preset.features(values, jnp) if names else []
        feats = jnp.stack(features) if features else jnp.zeros((0,), raw.dtype)
        return feats, values

    return split


def operator_scale(config):
    """Size of L on a smooth unit function: mean of pi^2 tr a + pi |b|_1 + |c| over the domain."""
    import numpy as np

    preset = config.preset
    axes = np.meshgrid(*[np.linspace(0.05, 0.95, 10)] * config.dim, indexing="ij")
    x = np.stack([a.ravel() for a in axes], -1)
    params = {**config.fixed_params,
              **{k: 0.5 * (v["low"] + v["high"]) for k, v in config.trained_params.items()}}
    size = (np.pi ** 2 * np.trace(preset.a(x, params), axis1=1, axis2=2)
            + np.pi * np.abs(preset.b(x, params)).sum(1) + np.abs(preset.c(x, params)))
    return float(np.mean(size))


def residual_scale(config, epsilon, anchor_scale, part=None):
    """``scale(x, y) -> divisor`` of one pair's residual (see the module docstring); ``part`` is the
    configuration's split-off part (``config.split()``)."""
    mode = config.options["residual_norm"]
    if mode == "none":
        return lambda x, y: 1.0
    if mode == "source":
        peak = (epsilon * jnp.sqrt(jnp.pi)) ** -config.dim
        return lambda x, y: peak
    smooth = operator_scale(config) * anchor_scale
    if part is not None and part.removes_source:
        return lambda x, y: smooth
    return lambda x, y: smooth + gaussian(x, y, epsilon)


def make_loss(config, arch, stage, anchor_scale):
    """``loss(params, batch, weights) -> (total, terms)`` for one stage."""
    preset = config.preset
    jet = pair_jet(arch, stages=stage.active, dd=stage.dd)
    value = pair_function(arch, stages=stage.active, dd=stage.dd)
    split = parameter_dicts(config)
    part = config.split()
    scale = residual_scale(config, stage.epsilon, anchor_scale, part)

    def source(x, y, values):
        delta = gaussian(x, y, stage.epsilon)
        # with a split-off part (problems.split) the network is R = G - S, with what is left of the source
        return delta if part is None else part.remainder_source(x, y, values, delta, jnp)

    def residual(params, x, y, raw):
        feats, values = split(raw)
        coeffs = coefficients(preset, x, values)
        g = jet(params, x, y, feats, coeffs[0])
        lg = apply_from_derivatives(preset, coeffs, g.value, g.grad, g.lap)
        return (lg - source(x, y, values)) / scale(x, y)

    def plain(params, x, y, raw):
        return value(params, x, y, split(raw)[0])

    def boundary(params, x, y, raw):
        # G = R + S vanishes on the boundary
        if part is None or part.zero_on_boundary:
            return plain(params, x, y, raw)
        feats, values = split(raw)
        return value(params, x, y, feats) + part.boundary_kernel(x, y, values, jnp)

    def loss(params, batch, weights):
        res = jax.vmap(residual, (None, 0, 0, 0))(params, batch["res_x"], batch["res_y"],
                                                  batch["res_p"])
        bc = jax.vmap(boundary, (None, 0, 0, 0))(params, batch["bc_x"], batch["bc_y"], batch["bc_p"])
        anc = jax.vmap(plain, (None, 0, 0, 0))(params, batch["anc_x"], batch["anc_y"],
                                               batch["anc_p"])
        terms = {"res": jnp.mean(res ** 2), "bc": jnp.mean(bc ** 2) / anchor_scale ** 2,
                 "aux": jnp.mean((anc - batch["anc_g"]) ** 2) / anchor_scale ** 2}
        total = weights["res"] * terms["res"] + weights["bc"] * terms["bc"] + weights["aux"] * terms["aux"]
        return total, terms

    return loss


def gate_seeds(config, arch):
    """Seed points of the DD subdomains in the gate's input space (section 3.4, figure 7).

    1D: y in {0, 0.5, 1} (Q evenly spaced); 2D: the centre and the four corners (Q = 5); over a
    parameter: Q values evenly spread over its (periodic) range, as features.
    """
    import numpy as np

    q = arch.subdomains
    if arch.gate_input == "params":
        (name, spec), = config.trained_params.items()
        span = spec["period"] or (spec["high"] - spec["low"])
        count = q if spec["period"] else q - 1
        values = spec["low"] + span * np.arange(q) / max(count, 1)
        split = parameter_dicts(config)
        return np.stack([np.asarray(split(jnp.asarray([v], jnp.float32))[0]) for v in values])
    if arch.dim == 1:
        return np.linspace(0.0, 1.0, q)[:, None]
    if arch.dim == 2 and q == 5:
        return np.array([[0.5, 0.5], [0, 0], [1, 0], [0, 1], [1, 1]], dtype=float)
    side = int(round(q ** (1.0 / arch.dim)))
    if side ** arch.dim != q:
        raise ValueError(f"{q} subdomains in {arch.dim}D: use 5 (centre and corners) or a perfect power")
    axes = np.meshgrid(*[np.linspace(0, 1, side)] * arch.dim, indexing="ij")
    return np.stack([a.ravel() for a in axes], -1)


def make_gate_loss(config, arch):
    """Cross entropy of the gate against soft Voronoi targets around the seeds (gate pretraining)."""
    seeds = jnp.asarray(gate_seeds(config, arch), jnp.float32)
    spacing = jnp.min(jnp.where(jnp.eye(len(seeds), dtype=bool), jnp.inf,
                                jnp.linalg.norm(seeds[:, None] - seeds[None], axis=-1)))
    width = config.options["gate_width"] * spacing
    gate = MLP(arch.aux_width, arch.aux_depth, out=arch.subdomains)
    split = parameter_dicts(config)
    ranges = [config.trained_params[n] for n in sorted(config.trained_params)]
    n = 1000

    def inputs(key):
        if arch.gate_input == "source":
            return jax.random.uniform(key, (n, arch.dim))  # the gate sees them centred
        low = jnp.asarray([r["low"] for r in ranges])
        high = jnp.asarray([r["high"] for r in ranges])
        raw = low + (high - low) * jax.random.uniform(key, (n, len(ranges)))
        return jax.vmap(lambda r: split(r)[0])(raw)

    def loss(params, key):
        z = inputs(key)
        target = jax.nn.softmax(-jnp.sum((z[:, None] - seeds[None]) ** 2, -1) / width ** 2, axis=-1)
        seen = centred(z) if arch.gate_input == "source" else z
        logits = gate.apply({"params": params["gate"]}, Jet(seen)).value
        ce = -jnp.mean(jnp.sum(target * jax.nn.log_softmax(logits, -1), -1))
        return ce, {"gate": ce}

    return loss
