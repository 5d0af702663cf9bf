"""The adaptive multiscale network alphaMSNN (eqs. 27, 28, 39-41) in flax.

    G(x, y) = phi_far(x, y) + sum_k sum_{j in near, middle} eps_k^alpha_jk(y) f_jk((x - y) / eps_k^beta_jk(y), y)

with the last stage optionally replaced by Q experts mixed by a softmax gate r(y) (eqs. 40-41).

The network is written once over ``Jet``s: a value together with, optionally, its gradient in x and its
weighted Laplacian sum_ij A_ij d_i d_j in x for a given matrix A (the diffusion tensor). Carrying these
through each layer (a "forward Laplacian") costs d + 2 matrix products per layer, against 4d for a jvp
over a jvp, which is what makes a training step fast; without derivatives it is the plain network.
Functions here evaluate one pair (x, y) of shape (d,); callers vmap over batches.
"""
from typing import NamedTuple, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from .architecture import Architecture


class Jet(NamedTuple):
    """A quantity and (optionally) its x-derivatives: grad (d, n) and the A-weighted Laplacian (n,)."""

    value: jnp.ndarray
    grad: Optional[jnp.ndarray] = None
    lap: Optional[jnp.ndarray] = None
    metric: Optional[jnp.ndarray] = None  # A (d, d)

    @property
    def has_derivatives(self):
        return self.grad is not None

    def scale(self, s):
        """Multiply by s, constant in x."""
        if not self.has_derivatives:
            return Jet(self.value * s)
        return Jet(self.value * s, self.grad * s, self.lap * s, self.metric)

    def __mul__(self, other):
        """The product of two x-dependent quantities (A symmetric)."""
        value = self.value * other.value
        if not self.has_derivatives:
            return Jet(value)
        cross = jnp.einsum("ij,in,jn->n", self.metric, self.grad, other.grad)
        return Jet(value, self.grad * other.value + other.grad * self.value,
                   self.lap * other.value + other.lap * self.value + 2.0 * cross, self.metric)

    def __add__(self, other):
        if not self.has_derivatives:
            return Jet(self.value + other.value)
        return Jet(self.value + other.value, self.grad + other.grad, self.lap + other.lap, self.metric)

    def tanh(self):
        t = jnp.tanh(self.value)
        if not self.has_derivatives:
            return Jet(t)
        dt = 1.0 - t * t
        quadratic = jnp.einsum("ij,in,jn->n", self.metric, self.grad, self.grad)
        return Jet(t, dt * self.grad, dt * self.lap - 2.0 * t * dt * quadratic, self.metric)

    def concat(self, constant):
        """Append inputs that do not depend on x."""
        value = jnp.concatenate([self.value, constant])
        if not self.has_derivatives:
            return Jet(value)
        zeros = jnp.zeros((self.grad.shape[0], constant.shape[0]), self.grad.dtype)
        return Jet(value, jnp.concatenate([self.grad, zeros], axis=1),
                   jnp.concatenate([self.lap, jnp.zeros_like(constant)]), self.metric)


def centred(z):
    """[0, 1] -> [-1, 1]: centred inputs make the tanh layers far better conditioned."""
    return 2.0 * z - 1.0


def input_jet(x, shift, scale, metric):
    """(x - shift) * scale as a Jet in x (scale constant in x)."""
    value = (x - shift) * scale
    if metric is None:
        return Jet(value)
    d = x.shape[0]
    return Jet(value, scale * jnp.eye(d, dtype=x.dtype), jnp.zeros_like(value), metric)


class Dense(nn.Module):
    """nn.Dense's parameters and initialization, applied to every channel of a Jet."""

    features: int
    kernel_init: callable = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, z: Jet):
        kernel = self.param("kernel", self.kernel_init, (z.value.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        value = z.value @ kernel + bias
        if not z.has_derivatives:
            return Jet(value)
        return Jet(value, z.grad @ kernel, z.lap @ kernel, z.metric)


class MLP(nn.Module):
    """tanh hidden layers and a linear output; a zero output layer makes the initial output 0."""

    width: int
    depth: int
    out: int = 1
    zero_output: bool = False

    @nn.compact
    def __call__(self, z: Jet):
        for i in range(self.depth):
            z = Dense(self.width, name=f"hidden_{i}")(z).tanh()
        init = nn.initializers.zeros if self.zero_output else nn.initializers.lecun_normal()
        return Dense(self.out, kernel_init=init, name="output")(z)


def scale_exponents(raw, alpha0):
    """(alpha, beta) of the near and middle branch from the scale network's 4 raw outputs.

    The ordering of section 3.4 is built in: beta_middle = beta_near * sigmoid(.) < beta_near and
    alpha_middle = alpha_near + softplus(.) >= alpha_near, for any parameters. At creation (raw = 0)
    beta_near = 1 and alpha_near = alpha0 (eq. 26), beta_middle = 1/2.
    """
    beta_near = 1.0 + 0.5 * jnp.tanh(raw[..., 0])
    beta_middle = beta_near * jax.nn.sigmoid(raw[..., 1])
    alpha_near = alpha0 + raw[..., 2]
    alpha_middle = alpha_near + jax.nn.softplus(raw[..., 3])
    return jnp.stack([alpha_near, alpha_middle], -1), jnp.stack([beta_near, beta_middle], -1)


class StageBranches(nn.Module):
    """The near- and middle-field branches of one epsilon stage with their scale network."""

    epsilon: float
    width: int
    depth: int
    aux_width: int
    aux_depth: int
    alpha0: float

    @nn.compact
    def __call__(self, x, y, feats, metric=None):
        source = jnp.concatenate([centred(y), feats])
        raw = MLP(self.aux_width, self.aux_depth, out=4, zero_output=True, name="scales")(
            Jet(source)).value
        alpha, beta = scale_exponents(raw, self.alpha0)
        log_eps = jnp.log(jnp.asarray(self.epsilon, x.dtype))
        total = None
        for j, name in enumerate(("near", "middle")):
            # beta scales only the input layer, alpha only the output layer (section 5.2);
            # y and the parameter features pass unscaled (eq. 27, section 5.4)
            u = input_jet(x, y, jnp.exp(-beta[j] * log_eps), metric).concat(source)
            branch = MLP(self.width, self.depth, name=name)(u).scale(jnp.exp(alpha[j] * log_eps))
            total = branch if total is None else total + branch
        return total


def boundary_factor(x, widths, metric):
    """B(x) = prod over the faces of [0, 1]^d of (1 - exp(-distance / width)), as a Jet.

    Vanishes on the boundary; with a learnable width per face it carries boundary layers (convection
    towards a Dirichlet face) that a tanh network would need very large weights to form.
    """
    d = x.shape[0]
    factor = None
    for k in range(d):
        for side, (distance, sign) in enumerate(((x[k], 1.0), (1.0 - x[k], -1.0))):
            width = widths[k, side]
            decay = jnp.exp(-distance / width)
            value = (1.0 - decay)[None]
            if metric is None:
                term = Jet(value)
            else:
                grad = jnp.zeros((d, 1), x.dtype).at[k, 0].set(sign * decay / width)
                lap = (-metric[k, k] * decay / width ** 2)[None]
                term = Jet(value, grad, lap, metric)
            factor = term if factor is None else factor * term
    return factor


class AlphaMSNN(nn.Module):
    arch: Architecture

    def stage(self, k, name=None):
        a = self.arch
        return StageBranches(a.epsilons[k], a.widths[k], a.depth, a.aux_width, a.aux_depth,
                             a.alpha0[k], name=name or f"stage_{k}")

    def experts(self):
        a = self.arch
        k = a.stages - 1
        mixture = nn.vmap(StageBranches, variable_axes={"params": 0}, split_rngs={"params": True},
                          in_axes=None, out_axes=0, axis_size=a.subdomains)
        return mixture(a.epsilons[k], a.widths[k], a.depth, a.aux_width, a.aux_depth, a.alpha0[k],
                       name="experts")

    def gate(self, y, feats):
        a = self.arch
        z = centred(y) if a.gate_input == "source" else feats
        return jax.nn.softmax(MLP(a.aux_width, a.aux_depth, out=a.subdomains, name="gate")(Jet(z)).value)

    @nn.compact
    def __call__(self, x, y, feats, stages=None, dd=None, metric=None):
        """G(x, y) (a Jet) with the first ``stages`` stages active; ``dd`` mixes the last one's experts.

        With ``metric`` = A (d, d), the Jet also holds grad_x G and sum_ij A_ij d_i d_j G.
        """
        a = self.arch
        stages = a.stages if stages is None else stages
        dd = a.domain_decomposition if dd is None else dd
        two = jnp.asarray(2.0, x.dtype)
        g = MLP(a.far_width, a.depth, name="far")(
            input_jet(x, 0.5, two, metric).concat(jnp.concatenate([centred(y), feats])))
        plain = stages - 1 if dd else stages
        for k in range(plain):
            g = g + self.stage(k)(x, y, feats, metric)
        if dd:
            if self.is_initializing():
                self.stage(stages - 1)(x, y, feats, metric)  # created here: the experts copy it
            weights = self.gate(y, feats)
            experts = self.experts()(x, y, feats, metric)
            mixed = Jet(weights @ experts.value) if metric is None else Jet(
                weights @ experts.value, jnp.einsum("q,qdn->dn", weights, experts.grad),
                weights @ experts.lap, metric)
            g = g + mixed
        if a.boundary_layer:
            log_widths = self.param("boundary", nn.initializers.constant(jnp.log(0.05)), (a.dim, 2))
            g = boundary_factor(x, jnp.exp(log_widths), metric) * g
        return Jet(g.value[0]) if metric is None else Jet(g.value[0], g.grad[:, 0], g.lap[0], metric)


def init_params(arch, seed=0, dtype=jnp.float32):
    """Parameters of every stage, the experts and the gate (all that any training stage uses)."""
    model = AlphaMSNN(arch)
    d, p = arch.dim, arch.n_features
    zeros = jnp.zeros((d,), dtype), jnp.zeros((d,), dtype), jnp.zeros((p,), dtype)
    return model.init(jax.random.PRNGKey(seed), *zeros, stages=arch.stages,
                      dd=arch.domain_decomposition)["params"]


def final_params(arch, params):
    """The parameters the trained model uses: with DD, the last plain stage is replaced by experts."""
    if not arch.domain_decomposition:
        return dict(params)
    return {k: v for k, v in params.items() if k != f"stage_{arch.stages - 1}"}


def pair_function(arch, stages=None, dd=None):
    """``g(params, x, y, feats) -> scalar`` for one pair, with the given stages active."""
    model = AlphaMSNN(arch)

    def g(params, x, y, feats):
        return model.apply({"params": params}, x, y, feats, stages=stages, dd=dd).value

    return g


def pair_jet(arch, stages=None, dd=None):
    """``g(params, x, y, feats, A) -> Jet`` with grad_x G and sum_ij A_ij d_i d_j G at one pair."""
    model = AlphaMSNN(arch)

    def g(params, x, y, feats, metric):
        return model.apply({"params": params}, x, y, feats, stages=stages, dd=dd, metric=metric)

    return g


def gate_weights(arch, params, z):
    """The DD gate's weights r (softmax) at its input z: the parameter features for a gate over the
    parameters, centred(y) for a gate over the source (for pruning, inspection and tests)."""
    gate = MLP(arch.aux_width, arch.aux_depth, out=arch.subdomains)
    return jax.nn.softmax(gate.apply({"params": params["gate"]}, Jet(z)).value)


def stage_exponents(arch, params, k, y, feats):
    """(alpha, beta) of stage k's branches at source y (for inspection and tests)."""
    scales = MLP(arch.aux_width, arch.aux_depth, out=4, zero_output=True)
    raw = scales.apply({"params": params[f"stage_{k}"]["scales"]},
                       Jet(jnp.concatenate([centred(y), feats])))
    return scale_exponents(raw.value, arch.alpha0[k])
