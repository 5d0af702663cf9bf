"""Resonant modes split off a Helmholtz Green's function (issue 10): the closed-form identities, the
remainder's smoothness across a pole, and the trainer / kernel round trip."""
import math

import numpy as np
import pytest

from greenpc import problems, weights
from greenpc.kernels.learned import LearnedKernel
from greenpc.problems import coarse_inverse
from greenpc.problems.modes import ResonantModes, check_resonant, medium_of
from greenpc.problems.stencil import assemble_scipy
from greenpc.train import config as cfg
from greenpc.train.sampling import Anchors

from split_helpers import approximate_inverse, assert_refused, gmres_iterations, network_values, tiny_model


def pairs(points):
    n = len(points)
    return np.repeat(points, n, 0), np.tile(points, (n, 1))


def every_mode(dim, N):
    """All N^d discrete modes with w = 1: their sum is the whole discrete inverse."""
    modes = ResonantModes(dim, 1e12, math.pi ** 2 * dim * N * N + 1.0)
    modes.index = modes.index[(modes.index <= N).all(axis=1)]   # higher ones alias on the grid
    assert len(modes) == N ** dim
    return modes


@pytest.mark.parametrize("dim, N, k2", [(1, 31, 50.0), (1, 31, 300.0), (2, 11, 50.0), (2, 11, 300.0)])
def test_every_mode_with_discrete_eigenvalues_is_the_discrete_inverse(dim, N, k2):
    points, inverse = coarse_inverse(problems.get(f"shifted{dim}d"), N, {"k2": k2})
    x, y = pairs(points)
    total = every_mode(dim, N).part(x, y, k2, spacing=1.0 / (N + 1)).reshape(inverse.shape)
    assert np.abs(total - inverse).max() <= 1e-10 * np.abs(inverse).max()


@pytest.mark.parametrize("medium", [None, {"gauss": 1.0}])
@pytest.mark.parametrize("layout", ["block", "scattered"])
def test_the_part_of_pairs_is_the_sum_over_modes_at_every_pair(medium, layout):
    """S by distinct points (a block's matrix product, or row-wise for scattered pairs, dropping modes
    of negligible weight) against the plain sum over every mode at each pair (k2 given per pair)."""
    dim, h, k2 = 2, 1.0 / 33, 300.0
    modes = ResonantModes(dim, 100.0, 1300.0, window="below",
                          medium=medium_of(problems.get("helmholtz2d"), medium) if medium else None)
    rng = np.random.default_rng(3)
    grid = h * rng.integers(1, 33, (400, dim))
    if layout == "block":
        x, y = np.repeat(grid[:20], 30, 0), np.tile(grid[20:50], (20, 1))
    else:
        x, y = grid[rng.integers(0, 400, 3000)], grid[rng.integers(0, 400, 3000)]
    got = modes.part(x, y, k2, spacing=h)
    want = modes.part(x, y, np.full(len(x), k2), spacing=h)
    assert np.abs(got - want).max() <= 1e-12 * np.abs(want).max()


@pytest.mark.parametrize("window", ["symmetric", "below"])
def test_the_remainder_has_no_pole_where_the_greens_function_has_one(window):
    N, width = 31, 30.0
    h = 1.0 / (N + 1)
    modes = ResonantModes.for_range(1, width, 1000.0, window=window)
    pole = modes.eigenvalues(h)[2]                       # the third discrete eigenvalue, ~ 9 pi^2
    points, _ = coarse_inverse(problems.get("shifted1d"), N, {"k2": 50.0})
    x, y = pairs(points)
    remainders, sizes = [], []
    for k2 in (pole - 1e-3, pole + 1e-3):
        _, inverse = coarse_inverse(problems.get("shifted1d"), N, {"k2": k2})
        remainder = inverse.ravel() - modes.part(x, y, k2, spacing=h)
        remainders.append(remainder)
        sizes.append(np.abs(inverse).max())
    assert min(sizes) > 100.0                            # G_h blows up at the pole (|G| ~ 1 / 1e-3)
    scale = np.abs(remainders[0]).max()
    assert scale < 1.0                                   # R stays of the size of G away from poles
    assert np.abs(remainders[1] - remainders[0]).max() < 1e-3 * scale   # and continuous across it


@pytest.mark.parametrize("window", ["symmetric", "below"])
def test_the_source_is_what_the_operator_gives_of_the_resonant_part(window):
    """-S_xx - k2 S = sum w phi(x) phi(y) (continuous eigenvalues), checked by a second difference."""
    modes = ResonantModes.for_range(2, 60.0, 400.0, window=window)
    k2, d = 250.0, 1e-4
    x = np.array([[0.31, 0.62]])
    y = np.array([[0.55, 0.4]])
    centre = modes.part(x, y, k2)
    laplacian = sum(modes.part(x + d * e, y, k2) - 2 * centre + modes.part(x - d * e, y, k2)
                    for e in np.eye(2)) / d ** 2
    source = modes.source(x, y, k2)
    assert abs(-laplacian - k2 * centre - source) <= 1e-5 * np.abs(laplacian)


def test_the_window_below_keeps_every_mode_under_k2_whole_and_the_remainder_only_modes_above():
    """G_h - S_h with the window "below" is the sum over the modes above k2 alone, and it is smooth
    (twice differentiable) in k2 where a mode crosses k2."""
    N, k2 = 31, 300.0
    h = 1.0 / (N + 1)
    modes = ResonantModes.for_range(1, 50.0, 1000.0, window="below")
    lam = modes.eigenvalues(h)
    w = modes.window(k2, lam)
    assert np.all(w[lam <= k2] == 1.0) and np.all(w[lam > k2 + 2 * 50.0] < 1e-7)
    points, inverse = coarse_inverse(problems.get("shifted1d"), N, {"k2": k2})
    x, y = pairs(points)
    remainder = inverse.ravel() - modes.part(x, y, k2, spacing=h)
    everything = every_mode(1, N)
    lam_all = everything.eigenvalues(h)
    phi = everything._phi(x, np, h) * everything._phi(y, np, h)
    above = np.sum(np.where(lam_all > k2, 1.0 - modes.window(k2, lam_all), 0.0) / (lam_all - k2) * phi,
                   axis=-1)
    assert np.abs(remainder - above).max() <= 1e-9 * np.abs(remainder).max()
    # the coefficient (1 - w(t)) / t of one mode, around t = 0: t^3 / width^4 on the right, 0 on the left
    t = np.array([-10.0, -1.0, 1.0, 5.0, 10.0])
    coefficient = (1.0 - modes.window(0.0, t)) / t
    np.testing.assert_allclose(coefficient, np.where(t > 0, t ** 3 / 50.0 ** 4, 0.0), rtol=2e-3, atol=0)


def test_only_minus_laplacian_minus_k2_n2_can_be_split():
    check_resonant(problems.get("helmholtz2d"), {"k2": 300.0, "gauss": 0.0, "layers": 0.0})
    check_resonant(problems.get("helmholtz1d"), {"k2": 300.0, "gauss": 1.0, "layers": 0.0})
    assert medium_of(problems.get("helmholtz1d"), {"k2": 300.0, "gauss": 0.0, "layers": 0.0}) is None
    with pytest.raises(ValueError, match="not conv1d"):
        check_resonant(problems.get("conv1d"), {})
    with pytest.raises(ValueError, match="-train_modes 50: resonant-mode splitting is for"):
        cfg.from_options({"problem": "react1d", "train_modes": "50"})


# 1D: 96 sines on a grid of 255 (the Galerkin truncation); 2D: 15 sines per direction span the grid
MEDIA = [(1, 255, {"gauss": 1.0, "layers": 0.0}), (1, 255, {"gauss": 0.0, "layers": 0.5}),
         (2, 15, {"gauss": 1.0, "layers": 0.0}), (2, 15, {"gauss": -0.5, "layers": 0.3})]


def discrete_generalized_modes(dim, N, medium):
    """Every eigenpair of the finite-difference -lap_h phi = mu n^2 phi, int n^2 phi^2 = 1 (dense)."""
    from scipy.linalg import eigh

    grid = problems.Grid(dim, N, "interior")
    points = grid.coordinates(grid.all_indices())
    laplacian = assemble_scipy(problems.get(f"helmholtz{dim}d"), grid,
                               {"k2": 0.0, "gauss": 0.0, "layers": 0.0}).toarray()
    mu, vectors = eigh(laplacian, np.diag(medium(points, np)))
    return points, mu, vectors / math.sqrt(grid.h ** dim)


@pytest.mark.parametrize("dim, N, medium_params", MEDIA)
def test_galerkin_modes_on_a_grid_are_the_discrete_generalized_modes(dim, N, medium_params):
    """The sine-Galerkin modes with the grid's mass matrix against a dense generalized eigensolve: the
    eigenvalues and the rank-one terms phi_m(x) phi_m(y) (sign-free; summed over degenerate ones)."""
    params = {"k2": 50.0, **medium_params}
    medium = medium_of(problems.get(f"helmholtz{dim}d"), params)
    modes = ResonantModes.for_range(dim, 100.0, 600.0, medium)
    h = 1.0 / (N + 1)
    points, mu, vectors = discrete_generalized_modes(dim, N, medium)
    count = len(modes)
    assert 5 <= count < N ** dim
    np.testing.assert_allclose(modes.eigenvalues(h), mu[:count], rtol=1e-9)
    x, y = pairs(points)
    k2 = 0.5 * (mu[2] + mu[3]) if abs(mu[3] - mu[2]) > 1e-6 else 0.5 * (mu[1] + mu[2])
    expected = (vectors[:, :count] * (modes.window(k2, mu[:count]) / (mu[:count] - k2))) @ vectors[:, :count].T
    got = modes.part(x, y, k2, spacing=h).reshape(expected.shape)
    assert np.abs(got - expected).max() <= 1e-8 * np.abs(expected).max()


@pytest.mark.parametrize("medium_params", [{"gauss": 1.0, "layers": 0.0}, {"gauss": 0.0, "layers": -0.6}])
def test_the_remainder_has_no_pole_in_a_heterogeneous_medium(medium_params):
    N, width = 31, 30.0
    h = 1.0 / (N + 1)
    preset = problems.get("helmholtz1d")
    modes = ResonantModes.for_range(1, width, 1000.0, medium_of(preset, {"k2": 0.0, **medium_params}))
    pole = modes.eigenvalues(h)[2]
    points, _ = coarse_inverse(preset, N, {"k2": 50.0, **medium_params})
    x, y = pairs(points)
    remainders, sizes = [], []
    for k2 in (pole - 1e-3, pole + 1e-3):
        _, inverse = coarse_inverse(preset, N, {"k2": k2, **medium_params})
        remainders.append(inverse.ravel() - modes.part(x, y, k2, spacing=h))
        sizes.append(np.abs(inverse).max())
    assert min(sizes) > 100.0
    scale = np.abs(remainders[0]).max()
    assert scale < 1.0
    assert np.abs(remainders[1] - remainders[0]).max() < 1e-3 * scale


@pytest.mark.parametrize("dim, medium_params, tol", [(1, {"gauss": 0.0, "layers": 0.5}, 1e-6),
                                                      (2, {"gauss": 1.0, "layers": 0.0}, 1e-5)])
def test_the_source_in_a_heterogeneous_medium(dim, medium_params, tol):
    """-lap_x S - k2 n^2(x) S = n^2(x) sum w phi(x) phi(y) for the continuous Galerkin modes."""
    medium = medium_of(problems.get(f"helmholtz{dim}d"), {"k2": 0.0, **medium_params})
    modes = ResonantModes.for_range(dim, 60.0, 300.0, medium)
    k2, d = 210.0, 1e-4
    x = np.array([[0.31, 0.62]])[:, :dim]
    y = np.array([[0.55, 0.4]])[:, :dim]
    centre = modes.part(x, y, k2)
    laplacian = sum(modes.part(x + d * e, y, k2) - 2 * centre + modes.part(x - d * e, y, k2)
                    for e in np.eye(dim)) / d ** 2
    residual = -laplacian - k2 * medium(x, np) * centre - modes.source(x, y, k2)
    assert abs(residual) <= tol * np.abs(laplacian)


TINY = {"problem": "helmholtz1d", "train_param": "k2=50:400", "train_anchor_params": "k2=50:400",
        "train_modes": "40", "train_widths": "4,5", "train_epsilons": "0.01,0.005",
        "train_far_width": "8", "train_epochs": "4,4,4", "train_batches_per_epoch": "5",
        "train_batch_boundary": "32", "train_batch_anchor": "32", "train_batch_uniform": "32",
        "train_batch_near": "32", "train_anchor_N": "8", "train_anchor_refine": "2",
        "train_gate_steps": "10", "train_subdomains": "2", "train_progress": "0", "train_seed": "3"}


def test_anchors_are_the_inverse_less_the_resonant_part():
    config = cfg.from_options(dict(TINY))
    anchors = Anchors(config)
    x, y, k2 = (np.asarray(a, dtype=np.float64) for a in (anchors.x, anchors.y, anchors.params[:, 0]))
    modes = config.modes()
    spacing = 1.0 / (2 * (8 + 1))
    restored = np.asarray(anchors.g, dtype=np.float64) + np.concatenate(
        [modes.part(x[k2 == v], y[k2 == v], v, spacing) for v in (50.0, 400.0)])
    for v, part in zip((50.0, 400.0), np.split(restored, 2)):
        _, inverse = coarse_inverse(problems.get("helmholtz1d"), 8, {"k2": v, "gauss": 0.0,
                                                                     "layers": 0.0}, 2)
        np.testing.assert_allclose(part, inverse.ravel(), rtol=1e-5, atol=1e-6 * np.abs(inverse).max())


@pytest.fixture(scope="module")
def split_model(tmp_path_factory):
    return tiny_model(TINY, tmp_path_factory.mktemp("modes"))


def test_a_split_model_records_its_modes_and_the_kernel_adds_them_back(split_model):
    model = split_model
    assert model.problem["modes"] == {"width": 40.0, "max_eigenvalue": 400.0 + 4 * 40.0}
    kernel = LearnedKernel(model, {"k2": 123.0}, gate_tol=0.0)   # the whole network, every expert
    kernel.spacing = 1.0 / 64
    x, y = np.array([[0.2], [0.5], [0.9]]), np.array([[0.5], [0.5], [0.3]])
    raw = network_values(model, kernel, x, y)
    expected = raw + ResonantModes(1, 40.0, 560.0).part(x, y, 123.0, 1.0 / 64)
    np.testing.assert_allclose(kernel(x, y), expected, rtol=1e-5, atol=1e-6)
    assert "plus 7 resonant modes (width 40)" in kernel.describe()


def test_a_weight_file_with_bad_modes_is_refused(split_model, tmp_path):
    model = split_model
    for bad, message in (({"width": -1.0, "max_eigenvalue": 10.0}, "expected {width > 0"),
                         ({"width": 1.0}, "expected {width > 0")):
        assert_refused(model, {**model.problem, "modes": bad}, tmp_path, message)


@pytest.mark.parametrize("name, medium_params, N", [("helmholtz1d", {"gauss": 0.0, "layers": 0.0}, 128),
                                                    ("helmholtz1d-gauss", {"gauss": 1.0, "layers": 0.0}, 128),
                                                    ("helmholtz2d", {"gauss": 0.0, "layers": 0.0}, 32),
                                                    ("helmholtz2d-gauss", {"gauss": 1.0, "layers": 0.0}, 32)])
def test_the_shipped_split_models_precondition_across_k2(name, medium_params, N):
    """The shipped parametric Helmholtz models (constant medium; Gaussian inclusion, generalized modes)
    as dense approximate inverses h^d G (1D at N = 128, 2D at N = 32): GMRES(50) converges for k2 = 100,
    300 and 1000, where it does not converge unpreconditioned: in 1D in at most 25 iterations (measured
    12-19); in 2D in at most 30 for k2 <= 300 and 60 for k2 = 1000 (measured 14 / 18 / 23 in the
    constant medium and 15 / 18 / 50 in the Gaussian inclusion, where N = 32 resolves the wave (k n up to
    45) with under 5 points per wavelength)."""
    from greenpc import models

    model = weights.load(models.path(name))
    assert model.problem["params"]["gauss"] == medium_params["gauss"]
    grid = problems.Grid(model.architecture.dim, N, "interior")
    b = np.random.default_rng(0).uniform(-0.5, 0.5, grid.size)
    for k2 in (100.0, 300.0, 1000.0):
        M = approximate_inverse(model, {"k2": k2}, grid)
        A = assemble_scipy(problems.get(model.problem["name"]), grid, {"k2": k2, **medium_params}).toarray()
        its = gmres_iterations(A, M, b)
        bound = 25 if grid.dim == 1 else (30 if k2 <= 300 else 60)
        assert its is not None and its <= bound, (k2, its)
        assert gmres_iterations(A, np.eye(grid.size), b) is None


DOUBLE_CHECK = """
import numpy as np
from greenpc import models, weights
from greenpc.kernels.learned import LearnedKernel
model = weights.load(models.path("helmholtz1d-gauss"))
x = np.linspace(0.05, 0.95, 40)[:, None]
y = np.linspace(0.9, 0.1, 40)[:, None]
values = []
for precision in ("single", "double"):
    kernel = LearnedKernel(model, {"k2": 450.0}, precision=precision)
    kernel.spacing = 1.0 / 128
    values.append(kernel(x, y))
single, double = values
print(np.abs(single - double).max() / np.abs(double).max())
"""


def test_a_split_kernel_in_double_precision_agrees_with_single():
    """The modes are added to the network's values in both precisions (in double the network's output
    can be a read-only view of the device array); run apart, since double precision switches JAX to
    64 bits for the whole process."""
    from conftest import run_python

    result = run_python(["-c", DOUBLE_CHECK], timeout=300)
    assert float(result.stdout.strip().splitlines()[-1]) < 1e-4
