"""Mini-batches of section 5.2, drawn inside the jitted step from a key (deterministic per step).

Each batch holds boundary pairs (x on the boundary), anchor subsamples (coarse-grid inverse values),
uniform pairs in the domain and near-diagonal pairs with |x - y| <= radius * eps; parametric problems
draw a parameter value per pair as well.
"""
import jax
import jax.numpy as jnp
import numpy as np

from ..problems import coarse_inverse
from ..problems.anchors import value_spacing


class Anchors:
    """All coarse-grid anchor pairs (x, y, parameter values, g) as device arrays."""

    def __init__(self, config):
        preset = config.preset
        names = sorted(config.trained_params)
        grids = np.meshgrid(*[config.anchor_params[n] for n in names], indexing="ij") if names else []
        combos = np.stack([g.ravel() for g in grids], -1) if names else np.zeros((1, 0))
        split = config.split()
        spacing = value_spacing(config.options["anchor_N"], config.anchor_refine())
        xs, ys, ps, gs = [], [], [], []
        for combo in combos:
            params = {**config.fixed_params, **dict(zip(names, combo))}
            points, values = coarse_inverse(preset, config.options["anchor_N"], params,
                                            config.anchor_refine())
            n = len(points)
            xs.append(np.repeat(points, n, 0))
            ys.append(np.tile(points, (n, 1)))
            ps.append(np.repeat(combo[None, :], n * n, 0))
            g = values.ravel()
            if split is not None:
                # the network learns G - S (resonant modes: S_h with that grid's eigenvalues holds G_h's
                # poles)
                g = g - split.kernel(xs[-1], ys[-1], params, spacing)
            gs.append(g)
        self.x = jnp.asarray(np.concatenate(xs), jnp.float32)
        self.y = jnp.asarray(np.concatenate(ys), jnp.float32)
        self.params = jnp.asarray(np.concatenate(ps), jnp.float32)
        self.g = jnp.asarray(np.concatenate(gs), jnp.float32)
        self.scale = float(np.sqrt(np.mean(np.concatenate(gs) ** 2)))

    def __len__(self):
        return int(self.g.shape[0])


def _uniform_params(key, n, ranges):
    if not ranges:
        return jnp.zeros((n, 0), jnp.float32)
    low = jnp.asarray([r["low"] for r in ranges], jnp.float32)
    high = jnp.asarray([r["high"] for r in ranges], jnp.float32)
    return low + (high - low) * jax.random.uniform(key, (n, len(ranges)))


def boundary_points(key, n, d):
    """Points uniform on the boundary of [0, 1]^d."""
    k_side, k_pos, k_end = jax.random.split(key, 3)
    x = jax.random.uniform(k_pos, (n, d))
    side = jax.random.randint(k_side, (n,), 0, d)
    end = jax.random.bernoulli(k_end, 0.5, (n,)).astype(jnp.float32)
    return jnp.where(jax.nn.one_hot(side, d, dtype=bool), end[:, None], x)


def reflect(x):
    """Fold points back into [0, 1] by reflection at the walls."""
    x = jnp.abs(x)
    return 1.0 - jnp.abs(1.0 - x)


def near_pairs(key, n, d, radius):
    """(x, y) with y uniform and x - y of length uniform in [0, radius] in a uniform direction."""
    k_y, k_r, k_dir = jax.random.split(key, 3)
    y = jax.random.uniform(k_y, (n, d))
    direction = jax.random.normal(k_dir, (n, d))
    direction = direction / jnp.linalg.norm(direction, axis=1, keepdims=True)
    r = radius * jax.random.uniform(k_r, (n, 1))
    return reflect(y + r * direction), y


def make_sampler(config, anchors):
    """``sample(key, epsilon) -> batch`` (a dict of arrays) with the configured sizes."""
    sizes = config.batch_sizes()
    d = config.dim
    ranges = [config.trained_params[n] for n in sorted(config.trained_params)]
    radius_units = config.options["near_radius"]
    n_anchor = len(anchors)

    def sample(key, epsilon):
        keys = jax.random.split(key, 8)
        bc_y = jax.random.uniform(keys[0], (sizes["boundary"], d))
        bc_x = boundary_points(keys[1], sizes["boundary"], d)
        pick = jax.random.randint(keys[2], (sizes["anchor"],), 0, n_anchor)
        uni_x = jax.random.uniform(keys[3], (sizes["uniform"], d))
        uni_y = jax.random.uniform(keys[4], (sizes["uniform"], d))
        near_x, near_y = near_pairs(keys[5], sizes["near"], d, radius_units * epsilon)
        n_res = sizes["uniform"] + sizes["near"]
        return {
            "bc_x": bc_x, "bc_y": bc_y, "bc_p": _uniform_params(keys[6], sizes["boundary"], ranges),
            "anc_x": anchors.x[pick], "anc_y": anchors.y[pick], "anc_p": anchors.params[pick],
            "anc_g": anchors.g[pick],
            "res_x": jnp.concatenate([uni_x, near_x]), "res_y": jnp.concatenate([uni_y, near_y]),
            "res_p": _uniform_params(keys[7], n_res, ranges),
        }

    return sample
