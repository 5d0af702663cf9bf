"""Shared pieces of the tests of split-off parts (resonant modes, free-space kernel)."""
import jax.numpy as jnp
import numpy as np

from greenpc import weights
from greenpc.model.network import pair_function
from greenpc.train import config as cfg
from greenpc.train.loop import train


def tiny_model(options, folder):
    """A model trained for a few steps with ``options`` (the options database as a dict)."""
    config = cfg.from_options({**options, "train_output": str(folder / "model.gpc")})
    path, _ = train(config, log=lambda *a: None)
    return weights.load(path)


def network_values(model, kernel, x, y):
    """The model's network alone at the pairs (x, y), with the kernel's parameter features."""
    network = pair_function(model.architecture)
    feats = jnp.asarray(kernel.features, jnp.float32)
    return np.array([float(network(model.params, jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32),
                                   feats)) for a, b in zip(x, y)])


def approximate_inverse(model, params, grid):
    """The dense approximate inverse h^d G of a shipped model on ``grid``'s points (the grid's spacing
    set, as the PC sets it)."""
    from greenpc.kernels.learned import LearnedKernel

    points = grid.coordinates(grid.all_indices())
    n = len(points)
    kernel = LearnedKernel(model, params)
    kernel.spacing = grid.h
    return kernel(np.repeat(points, n, 0), np.tile(points, (n, 1))).reshape(n, n) * grid.h ** grid.dim


def assert_refused(model, problem, folder, message):
    """A weight file of ``model`` with the problem record ``problem`` fails to load with ``message``."""
    import pytest

    out = str(folder / "bad.gpc")
    weights.save(out, model.architecture, problem, model.params, model.record["training"])
    with pytest.raises(weights.WeightFileError, match=message):
        weights.load(out)


def gmres_iterations(A, M, b):
    """Restarted GMRES(50) iterations on A M z = b to 1e-6 (None: not converged in 500)."""
    import scipy.sparse.linalg as spla

    count = [0]
    operator = spla.LinearOperator(A.shape, matvec=lambda v: A @ (M @ v))
    _, info = spla.gmres(operator, b, rtol=1e-6, restart=50, maxiter=10,
                         callback=lambda r: count.__setitem__(0, count[0] + 1), callback_type="pr_norm")
    return count[0] if info == 0 else None
