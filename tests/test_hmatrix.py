"""H-matrix engine: cluster trees, partition, compressors and the assembled H-matrix against dense."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenpc.hmatrix import (ACA, Admissibility, BlockEvaluator, BlockPartition, Chebyshev, ClusterTree,
                             MemoryLimitError, Nystrom, RankRule, box_distance, build, make_compressor,
                             paper_base_rank, paper_leaf_size, plan, sample_ranks, truncate)
from greenpc.hmatrix.compress import chebyshev_basis
from greenpc.kernels import Kernel, closed_form


class Smooth(Kernel):
    """exp(-|x - y|) or 1 / (1 + |x - y|) in any dimension: smooth off the diagonal, full rank on it."""

    def __init__(self, dim, form="exp"):
        super().__init__()
        self.dim, self.form, self.name = dim, form, f"smooth-{form}"

    def _evaluate(self, x, y):
        r = np.linalg.norm(x - y, axis=1)
        return np.exp(-r) if self.form == "exp" else 1.0 / (1.0 + r)


class Scaled(Kernel):
    """Another kernel times a constant: a wrong kernel the a posteriori check must notice."""

    def __init__(self, kernel, factor):
        super().__init__()
        self.inner, self.factor, self.dim = kernel, factor, kernel.dim

    def _evaluate(self, x, y):
        return self.factor * self.inner._evaluate(x, y)


def grid(n, dim):
    """The n^dim interior points of the uniform grid of spacing 1 / (n + 1) on the unit cube."""
    axis = np.arange(1, n + 1) / (n + 1)
    return np.stack(np.meshgrid(*[axis] * dim, indexing="ij"), axis=-1).reshape(-1, dim)


def poisson2d(n):
    kernel = closed_form("poisson2d")
    kernel.spacing = 1.0 / (n + 1)
    return kernel


def relative_product_error(hmatrix, kernel, rows, cols, seed=0):
    x = np.random.default_rng(seed).standard_normal(len(cols))
    exact = kernel.block(rows, cols) @ x
    return np.linalg.norm(hmatrix.matvec(x) - exact) / np.linalg.norm(exact)


def coverage(partition):
    """How many blocks hold each (row, column) entry."""
    counts = np.zeros(partition.shape, dtype=np.int64)
    for block in partition.near + partition.far:
        rows, cols = partition.indices(block)
        counts[np.ix_(rows, cols)] += 1
    return counts


rng = np.random.default_rng(7)
CLOUDS = {
    "1d": grid(300, 1),
    "2d": grid(20, 2),
    "3d": grid(8, 3),
    # a random cloud with a clump of exact duplicates and a near-duplicate
    "random": np.concatenate([rng.random((400, 2)), np.full((30, 2), 0.25), [[0.25, 0.25 + 1e-15]]]),
}


@pytest.mark.parametrize("name", CLOUDS)
def test_partition_covers_every_entry_exactly_once(name):
    points = CLOUDS[name]
    partition = plan(points, points, leaf_size=16, eta=1.0, rank=2).partition
    assert (coverage(partition) == 1).all()
    admissible = Admissibility(1.0)
    assert all(admissible(b.rows, b.cols) for b in partition.far)
    assert not any(admissible(b.rows, b.cols) for b in partition.near)


def test_distributed_partition_covers_own_rows_against_all_columns():
    points = grid(24, 2)
    own = points[200:376]  # one rank's contiguous slab of rows
    partition = plan(own, points, leaf_size=16, eta=0.7, rank=2).partition
    assert partition.shape == (len(own), len(points))
    assert (coverage(partition) == 1).all()


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(1, 120), st.integers(1, 12), st.floats(0.3, 3.0),
       st.integers(0, 2**31))
def test_any_cloud_is_clustered_and_covered(dim, count, leaf_size, eta, seed):
    # coarse coordinates make duplicate points likely
    points = np.random.default_rng(seed).integers(0, 6, size=(count, dim)) / 5.0
    tree = ClusterTree(points, leaf_size)
    assert sorted(tree.permutation) == list(range(count))
    for node in tree.nodes():
        own = points[tree.indices(node)]
        np.testing.assert_array_equal(own.min(axis=0), node.low)
        np.testing.assert_array_equal(own.max(axis=0), node.high)
        if node.children:
            ranges = [(c.start, c.stop) for c in node.children]
            assert ranges[0][0] == node.start and ranges[-1][1] == node.stop
            assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
            assert all(c.depth == node.depth + 1 for c in node.children)
        elif node.size > leaf_size:
            assert np.all(own == own[0])  # only coincident points may overflow a leaf
    assert (coverage(BlockPartition(tree, tree, Admissibility(eta))) == 1).all()


def test_tree_depth_and_partition_summary():
    points = grid(32, 2)
    tree = ClusterTree(points, 16)
    assert tree.depth == 3  # 1024 points, four children per split, 16 per leaf
    assert all(leaf.size == 16 for leaf in tree.leaves())
    partition = plan(points, points, leaf_size=16, eta=0.7, rank=1).partition
    summary = partition.summary()
    assert (summary["near_blocks"], summary["far_blocks"]) == (len(partition.near), len(partition.far))
    assert summary["near_entries"] + summary["far_entries_dense"] == len(points) ** 2
    assert min(summary["largest_far_block"]) == partition.shapes("far").min(axis=1).max()


def test_duplicate_points_make_one_leaf():
    points = np.concatenate([np.full((50, 3), 0.5), grid(4, 3)])
    tree = ClusterTree(points, 8)
    big = [leaf for leaf in tree.leaves() if leaf.size > 8]
    assert len(big) == 1 and big[0].diameter == 0.0


def test_1d_partition_has_the_structure_of_figure_9(tmp_path):
    n, eta = 512, 1.0
    h = 1.0 / (n + 1)
    partition = plan(grid(n, 1), grid(n, 1), leaf_size=16, eta=eta, rank=1).partition
    # near blocks touch the diagonal: the same leaf or a neighbouring one
    assert all(box_distance(b.rows, b.cols) <= 1.0001 * h for b in partition.near)
    for block in partition.far:
        diameter = max(block.rows.diameter, block.cols.diameter)
        distance = box_distance(block.rows, block.cols)
        assert diameter <= eta * distance  # eq. 43
        # maximal: the parent pair was inadmissible, so a block's size grows with its distance
        assert distance <= (2 / eta + 1) * diameter + 2 * (1 / eta + 1) * h
    sizes = partition.shapes("far").min(axis=1)
    assert sizes.max() >= 8 * sizes.min()
    path = tmp_path / "partition.png"
    partition.draw(path, ranks=np.ones(len(partition.far)))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_weak_admissibility_is_eta_infinity_and_stores_less_in_1d():
    points = grid(1024, 1)
    kernel = closed_form("poisson1d")
    strong = build(kernel, points, points, leaf_size=32, eta=1.0, compressor="nystrom_nearest", rank=1)
    weak = build(kernel, points, points, leaf_size=32, eta=math.inf, compressor="nystrom_nearest", rank=1)
    assert weak.storage.near_blocks == len(ClusterTree(points, 32).leaves())  # only the diagonal
    assert weak.storage.compression_ratio > strong.storage.compression_ratio
    # the off-diagonal blocks of a 1D Green's function have rank one: both are exact
    for hmatrix in (strong, weak):
        assert relative_product_error(hmatrix, kernel, points, points) < 1e-12


CASES = {
    "smooth2d": (lambda: Smooth(2), grid(20, 2), 0.7),
    "poisson1d": (lambda: closed_form("poisson1d"), grid(400, 1), 1.0),
    "shifted1d": (lambda: closed_form("shifted1d", {"k2": 50.0}), grid(400, 1), 1.0),
    "poisson2d": (lambda: poisson2d(20), grid(20, 2), 0.7),
}


@pytest.mark.parametrize("case", CASES)
def test_aca_product_matches_dense_to_tolerance(case):
    make_kernel, points, eta = CASES[case]
    kernel, tol = make_kernel(), 1e-6
    hmatrix = build(kernel, points, points, leaf_size=16, eta=eta, compressor="aca", tol=tol)
    assert hmatrix.storage.far_blocks > 0
    assert relative_product_error(hmatrix, kernel, points, points) <= 10 * tol


@pytest.mark.parametrize("compressor, options", [("aca", {"tol": 1e-6}), ("nystrom", {"rank": 8}),
                                                 ("nystrom_nearest", {"rank": 8})])
def test_boundary_points_where_the_kernel_vanishes(compressor, options):
    # a DMDA keeps the boundary points: G(x, .) = 0 there, so whole rows and blocks are zero
    n = 18
    axis = np.linspace(0.0, 1.0, n)
    points = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    kernel = poisson2d(n - 2)
    hmatrix = build(kernel, points, points, leaf_size=16, eta=0.7, compressor=compressor, **options)
    on_boundary = np.any((points == 0.0) | (points == 1.0), axis=1)
    assert any(on_boundary[block.rows].any() for block in hmatrix.far)
    assert relative_product_error(hmatrix, kernel, points, points) < 1e-4


@pytest.mark.parametrize("compressor", ["nystrom", "nystrom_nearest"])
def test_nystrom_error_decreases_as_the_rank_grows(compressor):
    points, kernel = grid(20, 2), Smooth(2, "inverse")
    errors = [relative_product_error(build(kernel, points, points, leaf_size=16, eta=1.0,
                                           compressor=compressor, rank=rank), kernel, points, points)
              for rank in (1, 2, 4, 8)]
    assert all(b < a for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 1e-4


def far_blocks(points, leaf_size, eta, smallest=0):
    """(row points, column points) of the admissible blocks of the partition with both sides >= smallest."""
    partition = plan(points, points, leaf_size=leaf_size, eta=eta, rank=1).partition
    blocks = [partition.indices(b) for b in partition.far if min(b.shape) >= smallest]
    return [(points[rows], points[cols]) for rows, cols in blocks]


@pytest.mark.parametrize("kernel, points, eta", [(Smooth(2), grid(24, 2), 0.7),
                                                 (closed_form("shifted1d", {"k2": -30.0}), grid(600, 1), 1.0),
                                                 (poisson2d(24), grid(24, 2), 0.7)])
def test_aca_reaches_its_tolerance_on_admissible_blocks(kernel, points, eta):
    for tol in (1e-4, 1e-8):
        for rows, cols in far_blocks(points, 16, eta, smallest=16):
            u, v = ACA(tol)(kernel, rows, cols)
            dense = kernel.block(rows, cols)
            assert np.linalg.norm(u @ v.T - dense) <= 10 * tol * np.linalg.norm(dense)


def test_compressors_evaluate_only_few_entries_of_a_block():
    kernel, points = Smooth(2), grid(32, 2)
    blocks = far_blocks(points, 16, 0.7, smallest=64)
    assert blocks
    for rows, cols in blocks:
        m, n = len(rows), len(cols)
        for compressor, rank in ((Nystrom("random"), 4), (Nystrom("nearest"), 4)):
            before = kernel.evaluations
            compressor(kernel, rows, cols, rank)
            # the landmark columns and rows: at most (m + n) per landmark
            landmarks = math.ceil(compressor.oversampling * rank)
            assert kernel.evaluations - before <= (m + n) * math.ceil(math.sqrt(landmarks)) ** 2
        before = kernel.evaluations
        u, _ = ACA(1e-6, recompress=False)(kernel, rows, cols)
        # one row and one column per term
        assert kernel.evaluations - before <= (m + n) * u.shape[1]
        assert kernel.evaluations - before < m * n


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_chebyshev_basis_reproduces_polynomials_of_its_degree(dim):
    """Interpolation at p Chebyshev points per axis is exact for polynomials of degree < p in each
    variable (rows of the basis sum to one); a flat axis gets one node."""
    rng = np.random.default_rng(dim)
    points = 0.3 + 0.2 * rng.random((50, dim))
    if dim > 1:
        points[:, -1] = 0.4                                   # a flat axis
    order = 5
    nodes, basis = chebyshev_basis(points, order)
    assert nodes.shape == (order ** (dim - (dim > 1)), dim) and basis.shape == (50, len(nodes))
    coefficients = rng.standard_normal((order,) * dim)

    def poly(x):
        out = 0.0
        for powers in np.ndindex(*coefficients.shape):
            out = out + coefficients[powers] * np.prod([x[:, a] ** k for a, k in enumerate(powers)], axis=0)
        return out

    assert np.allclose(basis.sum(axis=1), 1.0, atol=1e-12)
    assert np.allclose(basis @ poly(nodes), poly(points), atol=1e-10 * np.abs(poly(points)).max())
    # degree p is not reproduced: the test can tell
    assert not np.allclose(basis @ nodes[:, 0] ** order, points[:, 0] ** order, atol=1e-10)


@pytest.mark.parametrize("kernel, eta", [(Smooth(2, "inverse"), 0.7), (poisson2d(32), 1.5)])
def test_chebyshev_error_falls_with_the_order(kernel, eta):
    points = grid(32, 2)
    errors = [relative_product_error(build(kernel, points, points, leaf_size=16, eta=eta,
                                           compressor="chebyshev", order=p, rank=p * p), kernel, points,
                                     points) for p in (2, 3, 4, 5, 6)]
    # geometric: each point more per axis gains a factor of 8-50 here
    assert all(b < a / 5 for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 1e-5, errors


def test_chebyshev_evaluates_the_near_field_and_p_to_the_2d_per_far_block():
    """p^4 kernel evaluations per far block (at the clusters' nodes, none at the points), a side of at
    most p^2 points evaluated at its points, in one call for all far blocks."""
    kernel, points, p = Smooth(2), grid(32, 2), 4
    hmatrix = build(kernel, points, points, leaf_size=16, eta=0.7, compressor="chebyshev", order=p,
                    rank=p * p)
    shapes = hmatrix.partition.shapes("far")
    assert shapes.max() > p * p and shapes.min() <= p * p         # both kinds of sides
    assert hmatrix.kernel_calls == 2
    expected = hmatrix.partition.near_entries + np.minimum(shapes, p * p).prod(axis=1).sum()
    assert hmatrix.evaluations == expected == hmatrix.plan.interpolation_evaluations(p * p)
    assert hmatrix.storage.max_rank <= p * p
    assert relative_product_error(hmatrix, kernel, points, points) < 1e-4
    assert isinstance(make_compressor("chebyshev", order=3, tol=None), Chebyshev)


def test_chebyshev_blocks_share_their_clusters_bases():
    """Each block is (L_I, L_J, K(X_I, X_J)), the interpolant of the block exactly, with one basis
    array per cluster that all of its blocks share; the H-matrix stores each basis once, and the
    plan's figure for interpolated far blocks bounds what it stores."""
    kernel, points, p = Smooth(2), grid(20, 2), 4
    the_plan = plan(points, points, leaf_size=8, eta=0.7, rank=1)
    blocks = [the_plan.partition.indices(b) for b in the_plan.partition.far]
    factors = Chebyshev(order=p).compress(BlockEvaluator(kernel, points, points), blocks,
                                          [p * p] * len(blocks))
    sizes, bases = set(), {}
    for (rows, cols), (u, v, core) in zip(blocks, factors):
        sides = []
        for index in (rows, cols):
            nodes, basis = chebyshev_basis(points[index], p)
            sides.append((points[index], np.eye(len(index))) if len(nodes) >= len(index) else (nodes, basis))
        sizes.add(len(rows))
        reference = sides[0][1] @ kernel.block(sides[0][0], sides[1][0]) @ sides[1][1].T
        assert np.abs(u @ core @ v.T - reference).max() <= 1e-12 * np.abs(reference).max()
        assert bases.setdefault(("row", rows.tobytes()), u) is u
        assert bases.setdefault(("col", cols.tobytes()), v) is v
    assert min(sizes) <= p * p < max(sizes)         # clusters that are their own nodes, and larger ones
    hmatrix = build(kernel, points, points, leaf_size=8, eta=0.7, compressor="chebyshev", order=p, rank=1)
    far_entries = hmatrix.storage.far_entries
    assert far_entries == sum(a.size for a in bases.values()) + sum(f[2].size for f in factors)
    assert far_entries < sum(f[2].shape[0] * (len(r) + len(c)) for (r, c), f in zip(blocks, factors))
    assert hmatrix.plan.nodes == p * p
    assert far_entries <= hmatrix.plan.interpolation_entries(p * p)
    assert hmatrix.plan.estimate_bytes() >= hmatrix.storage.bytes
    # an exact term's factors and their coupling (one entry a term) are in the plan's figure too
    exact = build(kernel, points, points, leaf_size=8, eta=0.7, compressor="chebyshev", order=p, rank=1,
                  exact_rank=3)
    exact.add_exact(np.ones((len(points), 3)), np.ones((len(points), 3)))
    assert exact.storage.far_entries == far_entries + 3 * (2 * len(points) + 1)
    assert exact.plan.bound_bytes() >= exact.storage.bytes


def test_nystrom_evaluates_a_small_block_whole_when_that_is_cheaper():
    kernel, points = Smooth(2), grid(24, 2)
    rows, cols = far_blocks(points, 16, 0.7)[0]
    m, n = len(rows), len(cols)
    rank = m * n // (2 * (m + n)) + 1  # 2 rank landmark rows and columns hold more than m n entries
    before = kernel.evaluations
    u, v = Nystrom("random")(kernel, rows, cols, rank)
    assert kernel.evaluations - before == m * n
    dense = kernel.block(rows, cols)
    singular = np.linalg.svd(dense, compute_uv=False)
    assert np.linalg.norm(u @ v.T - dense) == pytest.approx(np.linalg.norm(singular[rank:]), rel=1e-6,
                                                            abs=1e-14)


def test_build_evaluates_near_field_plus_landmarks_only():
    kernel, points = Smooth(2), grid(24, 2)
    hmatrix = build(kernel, points, points, leaf_size=16, eta=0.7, compressor="nystrom", rank=3)
    shapes = hmatrix.partition.shapes("far")
    assert hmatrix.evaluations <= hmatrix.partition.near_entries + (2 * 3 * shapes.sum(axis=1)).sum()
    assert hmatrix.kernel_calls == 2  # near field in one call, all landmark rows and columns in another


def test_batching_splits_calls_without_changing_the_result():
    kernel, points = Smooth(2), grid(16, 2)
    options = dict(leaf_size=8, eta=0.7, compressor="nystrom", rank=3, seed=3)
    whole = build(kernel, points, points, **options)
    pieces = build(kernel, points, points, batch_pairs=997, **options)
    assert pieces.kernel_calls > whole.kernel_calls
    np.testing.assert_allclose(pieces.to_dense(), whole.to_dense(), rtol=1e-12, atol=1e-14)


def test_to_coo_pieces_reproduce_matvec_on_distributed_rows():
    import scipy.sparse as sp

    kernel, points = poisson2d(16), grid(16, 2)
    start, stop = 90, 200
    hmatrix = build(kernel, points[start:stop], points, leaf_size=16, eta=0.7, compressor="aca", tol=1e-8,
                    row_offset=start)
    pieces = hmatrix.to_coo()
    m, n, terms = stop - start, len(points), pieces.terms
    near, u, vt = (sp.coo_matrix((t.values, (t.rows, t.cols)), shape=shape)
                   for t, shape in zip(pieces[:3], [(m, n), (m, terms), (terms, n)]))
    assert terms == hmatrix.ranks.sum()
    x = np.random.default_rng(1).standard_normal(n)
    np.testing.assert_allclose(near @ x + u @ (vt @ x), hmatrix.matvec(x), rtol=1e-12, atol=1e-14)
    assert relative_product_error(hmatrix, kernel, points[start:stop], points) < 1e-6


def test_a_rank_without_rows_gets_an_empty_hmatrix():
    kernel, points = Smooth(2), grid(12, 2)
    hmatrix = build(kernel, np.zeros((0, 2)), points, leaf_size=16, eta=0.7, compressor="aca", tol=1e-6)
    assert hmatrix.shape == (0, len(points)) and not hmatrix.near and not hmatrix.far
    assert hmatrix.matvec(np.ones(len(points))).shape == (0,)
    pieces = hmatrix.to_coo()
    assert pieces.terms == 0 and all(len(p.values) == 0 for p in pieces[:3])
    assert hmatrix.storage.entries == 0 and hmatrix.check(kernel) == 0.0
    assert kernel.evaluations == 0


def test_check_is_small_for_the_exact_kernel_and_sees_a_wrong_one():
    kernel, points = closed_form("poisson1d"), grid(512, 1)
    hmatrix = build(kernel, points, points, leaf_size=22, eta=1.0, compressor="nystrom_nearest", rank=1)
    assert hmatrix.check(kernel, samples=500, seed=1) < 1e-10
    assert hmatrix.check(Scaled(kernel, 1.01), samples=500, seed=1) == pytest.approx(1 / 101, rel=1e-6)


def test_storage_figures_are_consistent():
    kernel, points = Smooth(2), grid(24, 2)
    hmatrix = build(kernel, points, points, leaf_size=16, eta=0.7, compressor="nystrom", rank=4)
    storage, shapes = hmatrix.storage, hmatrix.partition.shapes("far")
    assert storage.near_entries == hmatrix.partition.near_entries
    assert storage.entries == storage.near_entries + (hmatrix.ranks * shapes.sum(axis=1)).sum()
    assert storage.bytes == 8 * storage.entries
    assert storage.compression_ratio == pytest.approx(len(points) ** 2 / storage.entries)
    assert storage.entries_per_row == pytest.approx(storage.entries / len(points))
    assert storage.max_rank <= 4 and storage.mean_rank <= storage.max_rank
    assert storage.near_blocks + storage.far_blocks == len(hmatrix.near) + len(hmatrix.far)
    pieces = hmatrix.to_coo()
    assert sum(len(p.values) for p in pieces[:3]) == storage.entries
    assert hmatrix.plan.estimate_bytes() >= storage.bytes


def test_memory_limit_refuses_before_evaluating():
    kernel, points = Smooth(2), grid(24, 2)
    estimate = plan(points, points, leaf_size=16, eta=0.7, rank=4).estimate_bytes()
    with pytest.raises(MemoryLimitError, match="MiB"):
        build(kernel, points, points, leaf_size=16, eta=0.7, compressor="nystrom", rank=4,
              max_bytes=estimate - 1)
    assert kernel.evaluations == 0


def test_the_plan_counts_an_exact_term_and_the_limit_covers_it():
    """An exact rank-r term added after the build (``add_exact``) costs r (m + n) entries, which the plan
    and the memory limit count."""
    kernel, points = Smooth(2), grid(24, 2)
    settings = dict(leaf_size=16, eta=0.7, rank=4)
    without, with_term = plan(points, points, **settings), plan(points, points, exact_rank=5, **settings)
    assert with_term.bound_bytes() - without.bound_bytes() == 8 * 5 * 2 * len(points)
    assert with_term.estimate_bytes() - without.estimate_bytes() == 8 * 5 * 2 * len(points)
    assert "exact term" in with_term.describe_estimate()
    build(kernel, points, points, compressor="nystrom", max_bytes=without.estimate_bytes(), **settings)
    with pytest.raises(MemoryLimitError, match="exact term"):
        build(kernel, points, points, compressor="nystrom", max_bytes=without.estimate_bytes(),
              exact_rank=5, **settings)


def aca_plan(n, leaf=16):
    points = grid(n, 2)
    return points, poisson2d(n), plan(points, points, leaf_size=leaf, eta=0.7, adaptive=True)


def test_sampled_whole_groups_give_acas_working_ranks_exactly():
    points, kernel, planned = aca_plan(24)
    aca = ACA(1e-4, recompress=False)
    sampled = sample_ranks(planned, kernel, points, points, aca, samples=10 ** 6)
    assert sampled.sampled == len(planned.ranks)
    blocks = [planned.partition.indices(block) for block in planned.partition.far]
    working = [u.shape[1] for u, _ in aca.compress(BlockEvaluator(kernel, points, points), blocks,
                                                   planned.ranks)]
    np.testing.assert_array_equal(sampled.expected, working)
    assert sampled.bound_bytes() == planned.bound_bytes()


def test_sampled_estimate_lies_between_what_is_built_and_the_bound():
    points, kernel, planned = aca_plan(32)
    sampled = sample_ranks(planned, kernel, points, points, ACA(1e-4), samples=4)
    assert 0 < sampled.sampled < len(planned.ranks) / 10
    assert np.all(sampled.expected <= planned.ranks) and np.all(sampled.expected >= 1)
    hmatrix = build(kernel, points, points, leaf_size=16, eta=0.7, compressor="aca", tol=1e-4)
    assert hmatrix.storage.bytes <= sampled.estimate_bytes() <= 2 * hmatrix.storage.bytes
    assert sampled.estimate_bytes() < planned.bound_bytes() / 2   # the bound at max_rank is far off
    assert "sampled on" in sampled.describe_estimate()


def test_aca_builds_under_a_limit_below_its_bound_and_refuses_below_the_estimate():
    points, kernel, planned = aca_plan(32)
    options = dict(leaf_size=16, eta=0.7, compressor="aca", tol=1e-4)
    free = build(kernel, points, points, **options)
    limit = sample_ranks(planned, kernel, points, points, ACA(1e-4, seed=[0, 0])).estimate_bytes()
    assert limit < planned.bound_bytes()
    limited = build(kernel, points, points, max_bytes=limit, **options)
    assert limited.plan.expected is not None
    for a, b in zip(free.to_coo()[:3], limited.to_coo()[:3]):   # sampling changes nothing built
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    kernel = poisson2d(32)
    with pytest.raises(MemoryLimitError, match=r"MiB \(ranks sampled on \d+ of \d+ far blocks\)"):
        build(kernel, points, points, max_bytes=free.storage.bytes // 2, **options)
    assert 0 < kernel.evaluations < free.evaluations / 10   # refused after the samples only


def test_aca_stops_as_soon_as_its_factors_pass_the_budget():
    points, kernel, planned = aca_plan(24)
    blocks = [planned.partition.indices(block) for block in planned.partition.far]
    evaluator = BlockEvaluator(kernel, points, points)
    factors = ACA(1e-4, recompress=False).compress(evaluator, blocks, planned.ranks)
    needed = sum(u.size + v.size for u, v in factors)
    assert len(ACA(1e-4).compress(evaluator, blocks, planned.ranks, max_entries=needed)) == len(blocks)
    with pytest.raises(MemoryLimitError, match="ACA's factors passed"):
        ACA(1e-4).compress(evaluator, blocks, planned.ranks, max_entries=needed - 1)
    before = kernel.evaluations
    ACA(1e-4).compress(evaluator, blocks, planned.ranks)
    whole = kernel.evaluations - before
    with pytest.raises(MemoryLimitError):
        ACA(1e-4).compress(evaluator, blocks, planned.ranks, max_entries=needed // 4)
    assert kernel.evaluations - before - whole < whole / 2   # it stopped early, not at the end


def test_paper_1d_compression():
    n = 2048
    kernel, points = closed_form("poisson1d"), grid(n, 1)
    hmatrix = build(kernel, points, points, leaf_size=int(min(math.sqrt(n), 128)), eta=1.0,
                    compressor="nystrom_nearest", rank=1)
    assert hmatrix.storage.compression_ratio > 1
    assert hmatrix.storage.max_rank == 1
    assert relative_product_error(hmatrix, kernel, points, points) < 1e-12


def test_rank_rule_scales_logarithmically_above_the_leaf_size():
    rule = RankRule(10, 64)
    assert rule(64, 500) == rule(10, 10) == 10
    assert rule(4096, 4096) == 20  # log 4096 / log 64 = 2
    assert [rule(n, n) for n in (65, 128, 1024)] == sorted(rule(n, n) for n in (65, 128, 1024))
    assert (paper_base_rank(64), paper_base_rank(65)) == (10, 20)
    assert (paper_leaf_size(1, 2048), paper_leaf_size(1, 10**6), paper_leaf_size(2, 64),
            paper_leaf_size(2, 128)) == (45, 128, 64, 128)


def test_rank_rule_drives_the_far_ranks():
    points = grid(32, 2)
    rule = RankRule(3, 16)
    the_plan = plan(points, points, leaf_size=16, eta=0.7, rank_rule=rule)
    shapes = the_plan.partition.shapes("far")
    assert list(the_plan.ranks) == [min(rule(m, n), m, n) for m, n in shapes]
    assert the_plan.ranks.max() > 3


def test_truncate_keeps_the_requested_accuracy():
    rng = np.random.default_rng(2)
    u, v = rng.standard_normal((60, 12)), rng.standard_normal((50, 12))
    u *= 0.1 ** np.arange(12)
    exact = u @ v.T
    for tol in (1e-2, 1e-6):
        a, b = truncate(u, v, tol=tol)
        assert np.linalg.norm(a @ b.T - exact) <= tol * np.linalg.norm(exact)
        assert a.shape[1] < 12
    a, b = truncate(u, v, rank=3)
    assert a.shape == (60, 3) and b.shape == (50, 3)


@pytest.mark.parametrize("argument, value", [("leaf_size", 0), ("leaf_size", -3), ("leaf_size", 2.5),
                                             ("eta", 0), ("eta", -1.0), ("eta", math.nan),
                                             ("compressor", "svd"), ("tol", 0.0), ("tol", 1.0),
                                             ("tol", 1.5), ("rank", 0), ("max_rank", -1)])
def test_bad_arguments_are_named(argument, value):
    kernel, points = Smooth(1), grid(40, 1)
    options = dict(leaf_size=8, eta=1.0, compressor="aca", tol=1e-6) | {argument: value}
    with pytest.raises(ValueError, match=argument) as raised:
        build(kernel, points, points, **options)
    assert repr(value) in str(raised.value)
    assert kernel.evaluations == 0


def test_fixed_rank_compressor_needs_a_rank_and_the_table_lists_choices():
    points = grid(40, 1)
    with pytest.raises(ValueError, match="rank"):
        build(Smooth(1), points, points, leaf_size=8, eta=1.0, compressor="nystrom")
    with pytest.raises(ValueError, match="choose one of nystrom, nystrom_nearest, aca"):
        make_compressor("hodlr")
