"""The free-space kernel split off the rotated Laplacian's Green's function (issue 6): the closed-form
identities, and the trainer / weight file / kernel round trip."""
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import exp1

from greenpc import problems
from greenpc.kernels.learned import LearnedKernel
from greenpc.options import OptionError
from greenpc.problems import coarse_inverse
from greenpc.problems.freespace import EULER_GAMMA, FreeSpace, check_free_space, ein
from greenpc.train import config as cfg
from greenpc.train.sampling import Anchors

from split_helpers import approximate_inverse, assert_refused, gmres_iterations, network_values, tiny_model

ROTLAP = problems.get("rotlap2d")


def test_ein_is_the_entire_part_of_the_exponential_integral():
    s = np.array([1e-9, 1e-3, 0.2, 0.999, 1.0, 1.5, 7.0, 60.0])
    np.testing.assert_allclose(ein(s), exp1(s) + np.log(s) + EULER_GAMMA, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(np.asarray(ein(jnp.asarray(s, jnp.float32), jnp)), ein(s), rtol=1e-5)
    assert ein(np.array([0.0]))[0] == 0.0


@pytest.mark.parametrize("theta", [0.0, 0.39, 1.9])
def test_the_operator_gives_the_anisotropic_gaussian_of_the_part(theta):
    """-div(A grad S) = N_eps(A^(-1/2) (x - y)) / sqrt(det A), by central differences."""
    values, eps, d = {"theta": theta, "xi": 0.1}, 0.05, 2e-4
    part = FreeSpace(ROTLAP, eps)
    y = np.array([0.45, 0.55])
    x = y + eps * np.random.default_rng(0).standard_normal((20, 2))
    a = ROTLAP.a(y[None], values)[0]

    def s(points):
        return part.kernel(points, np.broadcast_to(y, points.shape), values)

    hessian = np.zeros((len(x), 2, 2))
    for i in range(2):
        for j in range(2):
            ei, ej = np.eye(2)[i] * d, np.eye(2)[j] * d
            hessian[:, i, j] = (s(x + ei + ej) - s(x + ei - ej) - s(x - ei + ej) + s(x - ei - ej)) / (4 * d * d)
    applied = -np.einsum("ij,nij->n", a, hessian)
    r = x - y
    expected = (np.exp(-np.einsum("ni,ij,nj->n", r, np.linalg.inv(a), r) / eps ** 2)
                / (np.pi * eps ** 2 * np.sqrt(np.linalg.det(a))))
    assert np.abs(applied - expected).max() <= 1e-3 * expected.max()


def test_the_part_is_the_log_kernel_away_from_the_source_and_finite_at_it():
    values = {"theta": 1.0, "xi": 0.1}
    a = ROTLAP.a(np.zeros((1, 2)), values)[0]
    part = FreeSpace(ROTLAP, 0.01)
    y = np.array([[0.3, 0.4]])
    x = y + np.array([[0.2, -0.1]])
    r = (x - y)[0]
    log_kernel = -np.log(np.sqrt(r @ np.linalg.inv(a) @ r)) / (2 * np.pi * np.sqrt(np.linalg.det(a)))
    np.testing.assert_allclose(part.kernel(x, y, values), log_kernel, rtol=1e-12)
    centre = (EULER_GAMMA / 2 - np.log(0.01)) / (2 * np.pi * np.sqrt(np.linalg.det(a)))
    np.testing.assert_allclose(part.kernel(y, y, values), centre, rtol=1e-12)
    traced = part.kernel(jnp.asarray(x), jnp.asarray(y), {"theta": jnp.asarray(1.0), "xi": 0.1}, xp=jnp)
    np.testing.assert_allclose(np.asarray(traced), log_kernel, rtol=1e-5)


def test_on_a_grid_the_width_gives_the_lattice_greens_function_diagonal():
    """For the 5-point Laplacian (xi = 1) G_h(0) - G_h(r) = (log(r / h) + gamma + 3/2 log 2) / (2 pi) far
    out, so S(y, y) is G_h's diagonal at eps = h exp(-gamma / 2) / 2^(3/2); the anisotropic widths are
    those at which S(y, y) equals the discrete inverse's diagonal less its smooth part."""
    part = FreeSpace(ROTLAP, 0.01)
    lattice = np.exp(-EULER_GAMMA / 2) / 2 ** 1.5
    np.testing.assert_allclose(part.width({"theta": 0.3, "xi": 1.0}, 1.0), lattice, rtol=2e-3)
    assert part.width({"theta": 0.3, "xi": 1.0}) == 0.01
    for theta in (0.0, 0.39):
        values = {"theta": theta, "xi": 0.1}
        points, inverse = coarse_inverse(ROTLAP, 63, values)
        centre = int(np.argmin(np.linalg.norm(points - 0.5, axis=1)))
        h = 1.0 / 64
        s = part.kernel(points, np.broadcast_to(points[centre], points.shape), values, spacing=h)
        ring = np.abs(np.linalg.norm(points - points[centre], axis=1) / h - 6.0) < 2.0
        smooth = np.mean(inverse[centre, ring] - s[ring])
        assert abs(inverse[centre, centre] - s[centre] - smooth) < 0.01 * inverse[centre, centre]


def test_only_constant_coefficient_diffusion_in_2d_with_a_reaction_at_most_can_be_split():
    for name in ("rotlap2d", "react2d", "helmholtz2d"):
        preset = problems.get(name)
        check_free_space(preset, preset.resolve({"gauss": 1.0} if name == "helmholtz2d" else {}))
    for name in ("conv2d", "react1d", "helmholtz1d"):
        preset = problems.get(name)
        with pytest.raises(ValueError, match="free-space split"):
            check_free_space(preset, preset.resolve({}))
    with pytest.raises(OptionError, match="-train_free_space"):
        cfg.from_options({"problem": "conv2d", "train_free_space": "1"})


#: a few steps of a tiny network on an 8 x 8 anchor grid (the sizes of every tiny model here)
SMALL = {"train_widths": "4", "train_epsilons": "0.02", "train_far_width": "8", "train_epochs": "4",
         "train_batches_per_epoch": "5", "train_batch_boundary": "32", "train_batch_anchor": "32",
         "train_batch_uniform": "32", "train_batch_near": "32", "train_anchor_N": "8",
         "train_anchor_refine": "1", "train_subdomains": "1", "train_progress": "0", "train_seed": "3"}
TINY = {"problem": "rotlap2d", "xi": "0.1", "train_param": "theta=0:3.141592653589793:periodic",
        "train_anchor_params": "theta=0:1.5707963267948966", "train_free_space": "1", **SMALL}


def assert_anchors_restore_the_inverse(anchors, part, preset, name, value):
    """Anchors of the parameter ``name`` = ``value`` plus the split-off part at the anchor grid's
    spacing (N = 8) are the discrete inverse."""
    x, y, p = (np.asarray(a, dtype=np.float64) for a in (anchors.x, anchors.y, anchors.params[:, 0]))
    rows = p == value
    values = preset.resolve({name: float(value)})
    restored = np.asarray(anchors.g, dtype=np.float64)[rows] + part.kernel(x[rows], y[rows], values,
                                                                           spacing=1.0 / 9)
    _, inverse = coarse_inverse(preset, 8, values, 1)
    np.testing.assert_allclose(restored, inverse.ravel(), rtol=1e-4, atol=1e-5 * np.abs(inverse).max())


def test_anchors_are_the_inverse_less_the_free_space_part():
    anchors = Anchors(cfg.from_options(dict(TINY)))
    for value in (0.0, np.float32(np.pi / 2)):
        assert_anchors_restore_the_inverse(anchors, FreeSpace(ROTLAP, 0.02), ROTLAP, "theta", value)


@pytest.fixture(scope="module")
def split_model(tmp_path_factory):
    return tiny_model(TINY, tmp_path_factory.mktemp("fs"))


def test_a_split_model_records_its_part_and_the_kernel_adds_it_back(split_model):
    model = split_model
    assert model.problem["free_space"] == {"epsilon": 0.02}
    kernel = LearnedKernel(model, {"theta": 0.7})
    x, y = np.array([[0.2, 0.3], [0.5, 0.5], [0.9, 0.1]]), np.array([[0.5, 0.5], [0.5, 0.5], [0.3, 0.6]])
    raw = network_values(model, kernel, x, y)
    expected = raw + FreeSpace(ROTLAP, 0.02).kernel(x, y, {"theta": 0.7, "xi": 0.1})
    np.testing.assert_allclose(kernel(x, y), expected, rtol=1e-5, atol=1e-6)
    assert "plus the free-space kernel in closed form (eps 0.02)" in kernel.describe()


def test_a_weight_file_with_a_bad_free_space_part_is_refused(split_model, tmp_path):
    model = split_model
    for extra, message in (({"free_space": {"epsilon": -1.0}}, "expected {epsilon in"),
                           ({"free_space": {}}, "expected {epsilon in"),
                           ({"modes": {"width": 1.0, "max_eigenvalue": 10.0}},
                            "has split-off modes, but resonant-mode splitting is for")):
        assert_refused(model, {**model.problem, **extra}, tmp_path, message)


def test_the_shipped_rotlap2d_model_preconditions_between_its_anchor_angles():
    """The shipped rotlap2d model (theta a network input, anchors at 0, pi/4, pi/2, 3pi/4) as a dense
    approximate inverse h^2 G at N = 24: GMRES(50) converges to 1e-6 in at most 20 iterations at anchor
    and non-anchor angles alike, where unpreconditioned it takes over 80 (101-104)."""
    from greenpc import models, weights
    from greenpc.problems.stencil import assemble_scipy

    model = weights.load(models.path("rotlap2d"))
    assert model.problem["free_space"]["epsilon"] == 0.01
    grid = problems.Grid(2, 24, "interior")
    b = np.random.default_rng(0).uniform(-0.5, 0.5, grid.size)
    for theta in (0.0, 0.39, 1.9):
        M = approximate_inverse(model, {"theta": theta}, grid)
        A = assemble_scipy(ROTLAP, grid, {"theta": theta, "xi": 0.1}).toarray()
        its = gmres_iterations(A, M, b)
        assert its is not None and its <= 20, (theta, its)
        plain = gmres_iterations(A, np.eye(grid.size), b)
        assert plain is None or plain > 80, (theta, plain)


HELMHOLTZ = problems.get("helmholtz2d")


def test_with_a_reaction_the_part_is_the_principal_parts_and_the_remainder_source_is_minus_c_s():
    """helmholtz2d (-lap - k2 n^2, Gaussian inclusion): S is the Laplacian's (its width on a grid the
    5-point lattice's), and delta - L_x S, by central differences, is remainder_source = k2 n^2(x) S."""
    values = HELMHOLTZ.resolve({"k2": 300.0, "gauss": 1.0})
    eps, d = 0.05, 2e-4
    part = FreeSpace(HELMHOLTZ, eps)
    np.testing.assert_allclose(part.width(values, 1.0), np.exp(-EULER_GAMMA / 2) / 2 ** 1.5, rtol=2e-3)
    y = np.array([0.45, 0.55])
    x = y + eps * np.random.default_rng(1).standard_normal((20, 2))
    ys = np.broadcast_to(y, x.shape)

    def s(points):
        return part.kernel(points, ys, values)

    lap = sum(s(x + e) - 2 * s(x) + s(x - e) for e in np.eye(2) * d) / d ** 2
    applied = -lap + HELMHOLTZ.c(x, values) * s(x)
    delta = np.exp(-np.sum((x - y) ** 2, -1) / eps ** 2) / (np.pi * eps ** 2)
    remainder = part.remainder_source(x, ys, values, delta)
    np.testing.assert_allclose(remainder, 300.0 * (1 + np.exp(-np.sum((x - 0.5) ** 2, -1) / 0.045)) * s(x),
                               rtol=1e-12)
    assert np.abs(delta - applied - remainder).max() <= 1e-3 * delta.max()


BOTH = {"problem": "helmholtz2d", "train_param": "k2=50:200", "train_anchor_params": "k2=50:200",
        "train_free_space": "1", "train_modes": "100", "train_modes_window": "below", **SMALL}


def test_free_space_and_modes_split_off_together_sum_and_chain_their_sources():
    from greenpc.problems.split import Sum

    config = cfg.from_options(dict(BOTH))
    part = config.split()
    assert isinstance(part, Sum) and part.removes_source and not part.zero_on_boundary
    free, modes = part.parts
    assert isinstance(free, FreeSpace) and modes is not None
    values = HELMHOLTZ.resolve({"k2": 150.0})
    rng = np.random.default_rng(2)
    x, y = rng.random((30, 2)), rng.random((30, 2))
    np.testing.assert_allclose(part.kernel(x, y, values, 1.0 / 9),
                               free.kernel(x, y, values, 1.0 / 9) + modes.kernel(x, y, values, 1.0 / 9))
    # on the boundary S is the free-space part alone (every mode vanishes there)
    edge = np.c_[rng.random(30), np.zeros(30)]
    np.testing.assert_allclose(part.boundary_kernel(edge, y, values), free.kernel(edge, y, values))
    delta = rng.random(30)
    np.testing.assert_allclose(part.remainder_source(x, y, values, delta),
                               -HELMHOLTZ.c(x, values) * free.kernel(x, y, values) - modes.source(x, y, 150.0))
    # the anchors are G_h less both parts
    assert_anchors_restore_the_inverse(Anchors(config), part, HELMHOLTZ, "k2", 200.0)


def test_a_model_with_both_parts_records_them_and_the_kernel_adds_both_back(tmp_path):
    from greenpc.problems.modes import ResonantModes

    model = tiny_model(BOTH, tmp_path)
    assert model.problem["free_space"] == {"epsilon": 0.02} and model.problem["modes"]["width"] == 100.0
    kernel = LearnedKernel(model, {"k2": 120.0})
    x, y = np.array([[0.2, 0.3], [0.5, 0.5], [0.9, 0.1]]), np.array([[0.5, 0.5], [0.5, 0.5], [0.3, 0.6]])
    raw = network_values(model, kernel, x, y)
    values = HELMHOLTZ.resolve({"k2": 120.0})
    modes = ResonantModes.from_dict(2, model.problem["modes"], None)
    expected = raw + FreeSpace(HELMHOLTZ, 0.02).kernel(x, y, values) + modes.kernel(x, y, values)
    np.testing.assert_allclose(kernel(x, y), expected, rtol=1e-5, atol=1e-6)
    assert "free-space kernel" in kernel.describe() and "resonant modes" in kernel.describe()
