"""A trained alphaMSNN as a Kernel: batched, jitted, chunked evaluation of G(x, y) in float32.

Pairs are evaluated in chunks of a fixed size (the last one padded) so the jitted function compiles
once; the chunk bounds the memory of one evaluation. The evaluator is ``model.inference.network``
(features x pairs, twice the pairs per second of the vmapped training network on the 2-core test
machine). With it, react1d ran at 1.07M pairs/s end to end with chunks of 8192, against 0.98M with
2048 and 0.60M with 32768, whose layers no longer fit the cache
(``bench/kernel_flops.py -flops_chunks``).
"""
import contextlib
import math

import numpy as np

from .. import problems
from .base import GATE_TOL, Kernel, KernelError


def parameter_values(model, given):
    """The network's parameter values: every trained parameter must be given, within its range."""
    trained = model.problem.get("trained_params", {})
    unknown = sorted(set(given) - set(trained))
    if unknown:
        known = ", ".join(sorted(trained)) or "none"
        raise KernelError(f"-greenpc_param: the model for {model.problem['name']!r} has no parameter "
                          f"{', '.join(unknown)} (it takes: {known})")
    values = {}
    for name, spec in trained.items():
        if name not in given:
            raise KernelError(f"-greenpc_param: the model for {model.problem['name']!r} needs "
                              f"{name}=VALUE (trained for {spec['low']:g} <= {name} <= "
                              f"{spec['high']:g})")
        value = float(given[name])
        reduced = value
        if spec.get("period"):
            reduced = spec["low"] + math.fmod(value - spec["low"], spec["period"]) % spec["period"]
        if not spec["low"] <= reduced <= spec["high"]:
            raise KernelError(f"-greenpc_param: {name}={value:g} is outside the trained range "
                              f"[{spec['low']:g}, {spec['high']:g}] of {model.path or 'the model'}")
        values[name] = value
    return values


def kept_experts(weights, tol):
    """Indices of the experts to evaluate, largest weight first, until the rest weigh at most ``tol``."""
    order = np.argsort(-weights, kind="stable")
    rest = np.cumsum(weights[order][::-1])[::-1]            # rest[i]: weight of order[i:]
    count = int(np.sum(rest > tol)) if tol > 0 else len(weights)
    return np.sort(order[:max(count, 1)])


def without_experts(model, kept):
    """(architecture, parameters) of the model with only the experts ``kept`` (the gate's softmax over
    their logits is their weights renormalized); one expert becomes the plain last stage."""
    from dataclasses import replace

    from jax.tree_util import tree_map

    arch, params = model.architecture, dict(model.params)
    experts = params.pop("experts")
    if len(kept) == 1:
        params.pop("gate")
        params[f"stage_{arch.stages - 1}"] = tree_map(lambda a: a[kept[0]], experts)
        return replace(arch, subdomains=1), params
    output = params["gate"]["output"]
    params["gate"] = {**params["gate"], "output": {"kernel": output["kernel"][:, kept],
                                                   "bias": output["bias"][kept]}}
    params["experts"] = tree_map(lambda a: a[kept], experts)
    return replace(arch, subdomains=len(kept)), params


_EVALUATORS = {}


def compiled_evaluator(arch):
    """One jitted pairwise evaluator per architecture, weights as arguments: a second PC set-up with
    the same kind of model (another weight file, other parameter values) reuses the compiled code; a
    parametric model with DD experts compiles once per number of experts its gate keeps.
    Compiled code also persists across runs in JAX's cache (``GREENPC_JAX_CACHE``, default
    ~/.cache/greenpc/jax; empty to disable), which saves seconds to minutes per set-up on 2 cores."""
    import json
    import os

    import jax

    from ..model.inference import network

    folder = os.environ.get("GREENPC_JAX_CACHE", os.path.expanduser("~/.cache/greenpc/jax"))
    if folder and not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", folder)
    key = json.dumps(arch.to_dict(), sort_keys=True)
    if key not in _EVALUATORS:
        _EVALUATORS[key] = jax.jit(network(arch))
    return _EVALUATORS[key]


class LearnedKernel(Kernel):
    """G(x, y) of a trained model at fixed parameter values."""

    name = "learned"

    def __init__(self, model, params=None, precision="single", chunk=1 << 13, gate_tol=GATE_TOL):
        super().__init__()
        import jax
        import jax.numpy as jnp

        self.model = model
        self.dim = model.architecture.dim
        self.domain = tuple(np.asarray(v, dtype=np.float64) for v in model.problem["domain"])
        self.values = parameter_values(model, params or {})
        if precision not in ("single", "double"):
            raise KernelError(f"precision is 'single' or 'double', got {precision!r}")
        self.precision = precision
        dtype = jnp.float32 if precision == "single" else jnp.float64
        if precision == "double":
            jax.config.update("jax_enable_x64", True)
        preset = problems.get(model.problem["name"])
        all_values = {**model.problem.get("params", {}), **self.values}
        features = [v for k in sorted(self.values)
                    for v in preset.param_features[k](all_values[k], np)] if self.values else []
        self.features = np.asarray(features, dtype=np.float64)
        # a gate over the parameters is one set of weights for every pair: experts it barely weighs are
        # left out (each costs as much as a stage)
        arch, weights = model.architecture, model.params
        self.experts = None
        if not 0.0 <= gate_tol < 1.0:
            raise KernelError(f"-greenpc_gate_tol must be in [0, 1), got {gate_tol!r}")
        if arch.domain_decomposition and arch.gate_input == "params":
            from ..model.network import gate_weights

            r = np.asarray(gate_weights(arch, model.params, jnp.asarray(self.features, jnp.float32)),
                           np.float64)
            kept = kept_experts(r, gate_tol)
            self.experts = (len(kept), arch.subdomains, float(np.delete(r, kept).sum()))
            if len(kept) < arch.subdomains:
                arch, weights = without_experts(model, kept)
        self._weights = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), weights)
        self._feats = jnp.asarray(self.features, dtype)
        self._batch = compiled_evaluator(arch)
        self._dtype = dtype
        self.chunk = int(chunk)
        # a model of G - S (problems.split) gets S back in closed form, in float64; with the grid's
        # spacing (set by the PC) resonant modes have the discrete operator's poles
        from ..problems.split import from_record

        self.split, self.spacing = from_record(preset, model.problem), None
        self.split_values = all_values
        self.split_added = True
        if self.split is not None:
            self.uses_spacing = True

    def describe(self):
        values = ", ".join(f"{k}={v:g}" for k, v in self.values.items())
        return (f"learned {self.model.problem['name']} model"
                + (f" ({values})" if values else "") + f", {self.precision} precision"
                + (f", plus {self.split.describe()}" if self.split is not None else "")
                + (f", {self.experts[0]} of {self.experts[1]} experts (gate weight left out "
                   f"{self.experts[2]:.1e})" if self.experts else ""))

    def _evaluate(self, x, y):
        m = len(x)
        pad = self.chunk - m
        if pad > 0:
            x = np.concatenate([x, np.repeat(x[-1:], pad, 0)])
            y = np.concatenate([y, np.repeat(y[-1:], pad, 0)])
        out = self._batch(self._weights, x.astype(self._dtype), y.astype(self._dtype), self._feats)
        out = np.asarray(out, dtype=np.float64)[:m]
        if self.split is not None and self.split_added:
            # (out may be a read-only view of the device array in double precision)
            out = out + self.split.kernel(x[:m], y[:m], self.split_values, self.spacing)
        return out

    @property
    def oscillatory(self):
        """A Helmholtz model (k2 > 0), unless ``split_apart`` leaves its network's part alone: the
        split-off part S holds the oscillation (the network's part took Chebyshev up to k2 = 1000)."""
        return self.split_values.get("k2", 0.0) > 0 and self.split_added

    @property
    def low_rank_split(self):
        """Whether the split-off part S is of low rank on every block (a Helmholtz model's resonant
        modes; the free-space kernel of rotlap2d is not)."""
        return self.split is not None and hasattr(self.split, "kernel_factors")

    def split_factors(self, rows, cols):
        """(a, b) with S(rows_i, cols_j) = (a b^T)_ij (``low_rank_split`` kernels)."""
        return self.split.kernel_factors(rows, cols, self.split_values, self.spacing)

    @contextlib.contextmanager
    def split_apart(self):
        """Evaluate the network's part R = G - S alone inside the block (an H-matrix compresses R and
        stores the factors of S whole)."""
        self.split_added = False
        try:
            yield
        finally:
            self.split_added = True
