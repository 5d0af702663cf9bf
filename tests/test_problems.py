"""The model problems: discretization order on manufactured solutions, both forms, anchors, presets."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse.linalg as spla

from greenpc import problems
from greenpc.problems.operator import apply_operator

jax.config.update("jax_enable_x64", True)

# (preset, parameters, expected order): central differences are second order, upwind first order
CASES = [("poisson1d", {}, 2), ("conv1d", {}, 1), ("react1d", {}, 2), ("shifted1d", {"k2": 30.0}, 2),
         ("poisson2d", {}, 2), ("conv2d", {}, 1), ("react2d", {}, 2),
         ("rotlap2d", {"theta": 0.7, "xi": 0.1}, 2), ("shifted2d", {"k2": 10.0}, 2)]


def exact(x):
    """A smooth solution vanishing on the boundary, with no symmetry the stencils could exploit."""
    return jnp.exp(x[0] + 0.5 * x[-1]) * jnp.prod(jnp.sin(jnp.pi * x))


def max_error(problem, params, N):
    grid = problems.Grid(problem.dim, N)
    points = grid.coordinates(grid.all_indices())
    rhs = jax.vmap(lambda x: apply_operator(problem, exact, x, params))(jnp.asarray(points))
    matrix = problems.assemble_scipy(problem, grid, params)
    solution = spla.spsolve(matrix.tocsc(), np.asarray(rhs))
    return np.abs(solution - np.asarray(jax.vmap(exact)(jnp.asarray(points)))).max()


@pytest.mark.parametrize("name,params,order", CASES)
def test_discretization_converges_at_its_order(name, params, order):
    problem = problems.get(name)
    sizes = (31, 63, 127) if problem.dim == 2 else (63, 127, 255)
    errors = [max_error(problem, params, N) for N in sizes]
    observed = np.log2(errors[1] / errors[2])
    assert errors[2] < errors[1] < errors[0]
    assert observed > order - 0.25, (errors, observed)


@pytest.mark.parametrize("name", ["conv1d", "rotlap2d", "react2d"])
def test_boundary_rows_kept_give_the_same_interior_solution(name):
    problem = problems.get(name)
    params = {"theta": 0.4} if name == "rotlap2d" else {}
    N = 20
    inner, outer = problems.Grid(problem.dim, N), problems.Grid(problem.dim, N, "boundary")
    rng = np.random.default_rng(0)
    f = rng.uniform(-0.5, 0.5, inner.size)
    u_inner = spla.spsolve(problems.assemble_scipy(problem, inner, params).tocsc(), f)
    index = outer.all_indices()
    f_outer = np.zeros(outer.size)
    interior = ~outer.is_boundary(index)
    f_outer[interior] = f  # both numberings are natural, so interior points keep their order
    u_outer = spla.spsolve(problems.assemble_scipy(problem, outer, params).tocsc(), f_outer)
    assert np.allclose(u_outer[interior], u_inner, rtol=1e-10, atol=1e-12)
    assert np.allclose(u_outer[~interior], 0.0)


def test_scalings_differ_by_h_to_the_d():
    problem, grid = problems.get("react2d"), problems.Grid(2, 9)
    a = problems.assemble_scipy(problem, grid, scaling="operator")
    b = problems.assemble_scipy(problem, grid, scaling="hd")
    assert np.allclose(b.toarray(), a.toarray() * grid.h ** 2)


@pytest.mark.parametrize("name", ["conv1d", "react1d", "poisson2d"])
def test_refined_anchors_converge_to_the_greens_function(name):
    """(L_h^-1)/h^d at the anchor points converges as the grid they come from is refined."""
    problem = problems.get(name)
    refinements = (1, 2, 4) if problem.dim == 2 else (1, 4, 16)
    values = [problems.coarse_inverse(problem, 7, refine=r)[1] for r in refinements]
    finest = problems.coarse_inverse(problem, 7, refine=2 * refinements[-1])[1]
    errors = [np.linalg.norm(v - finest) for v in values]
    assert errors[0] > errors[1] > errors[2]


def test_poisson1d_anchors_are_the_exact_greens_function():
    points, values = problems.coarse_inverse(problems.get("poisson1d"), 32)
    x, y = points[:, 0][:, None], points[:, 0][None, :]
    assert np.allclose(values, np.minimum(x, y) * (1 - np.maximum(x, y)), atol=1e-12)


def test_presets_validate_parameters():
    with pytest.raises(ValueError, match="no parameter 'k3'"):
        problems.get("shifted1d").resolve({"k3": 1})
    with pytest.raises(ValueError, match="outside"):
        problems.get("rotlap2d").resolve({"xi": 2.0})
    with pytest.raises(ValueError, match="unknown problem 'nope'"):
        problems.get("nope")
    with pytest.raises(ValueError, match="unknown grid form"):
        problems.Grid(1, 4, "ghost")


def test_rotated_tensor_is_symmetric_positive_definite_with_ratio_xi():
    problem = problems.get("rotlap2d")
    x = np.random.default_rng(1).uniform(size=(5, 2))
    for theta in np.linspace(0, np.pi, 7):
        a = problem.a(x, {"theta": theta, "xi": 0.1})
        eig = np.linalg.eigvalsh(a)
        assert np.allclose(a, np.swapaxes(a, 1, 2))
        assert np.allclose(eig[:, 0], 0.1) and np.allclose(eig[:, 1], 1.0)
