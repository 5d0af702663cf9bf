"""The H-matrix: a near field of dense blocks plus low-rank far blocks, built from a kernel.

``build`` is distributed-ready: on an MPI rank the row points are the points the rank owns and the
column points are all points, so each rank evaluates the kernel only for its own rows. Everything here
is in user numbering (the order of the points given); the cluster trees' permutations are used only to
name each block's rows and columns.
"""
import math
import time
from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np

from .admissibility import Admissibility
from .batch import BATCH_PAIRS, BlockEvaluator
from .cluster import ClusterTree, as_points
from .compress import (ENTRY_BYTES, Compressor, MemoryLimitError, check_rank, check_tol,
                       make_compressor)
from .partition import BlockPartition


class Plan(NamedTuple):
    """The block partition and the rank planned for each far block, known before any evaluation.

    For a fixed rank or a rank rule, ``ranks`` are the ranks the compressor aims at (truncation of an
    exactly low-rank block can only lower them); for an adaptive compressor they are its caps, and
    ``expected`` (from ``sample_ranks``) the ranks it is expected to reach, with ``sampled`` the number
    of far blocks compressed to find them. ``nodes``: the far blocks are interpolated at that many
    nodes per cluster on shared bases (Chebyshev, p^d), which sets their storage instead of ranks.
    """

    partition: BlockPartition
    ranks: np.ndarray
    expected: Optional[np.ndarray] = None
    sampled: int = 0
    exact_rank: int = 0
    nodes: int = 0

    @property
    def exact_entries(self):
        """Entries of the exact term's factors, r (m + n)."""
        return self.exact_rank * sum(self.partition.shape)

    def _bytes(self, ranks):
        if self.nodes:
            # and the exact term's coupling, one entry a term (``hmatrix.petsc``)
            far_entries = self.interpolation_entries(self.nodes) + self.exact_rank
        else:
            far_entries = int((ranks * self.partition.shapes("far").sum(axis=1)).sum())
        return ENTRY_BYTES * (self.partition.near_entries + self.exact_entries + far_entries)

    def bound_bytes(self):
        """Bytes the H-matrix can store at most: near entries plus rank (m + n) per far block (or
        ``interpolation_entries``), plus the exact term's r (m + n) (``exact_rank``)."""
        return self._bytes(self.ranks)

    def interpolation_entries(self, nodes):
        """Entries of the far blocks interpolated at ``nodes`` points per cluster on shared bases: a
        min(m, nodes) x min(n, nodes) core per block and each cluster's basis (its points x
        min(points, nodes)) once per side. An upper bound, as ``interpolation_evaluations``."""
        far = self.partition.far
        cores = int(np.minimum(self.partition.shapes("far"), nodes).prod(axis=1).sum())
        bases = 0
        for side in ("rows", "cols"):
            sizes = {id(c): c.size for c in (getattr(block, side) for block in far)}
            bases += sum(size * min(size, nodes) for size in sizes.values())
        return cores + bases

    def estimate_bytes(self):
        """Bytes the H-matrix is expected to need: the bound, or the sampled ranks' figure if known."""
        return self._bytes(self.ranks if self.expected is None else self.expected)

    def interpolation_evaluations(self, nodes):
        """Kernel evaluations of this H-matrix when each far block is interpolated at ``nodes`` points
        per cluster (Chebyshev: p^d; a side of fewer points at its points): the near entries plus
        min(m, nodes) min(n, nodes) per far block. A cluster flat along an axis needs fewer nodes, so
        this is an upper bound, exact on a grid's square clusters."""
        far = self.partition.shapes("far")
        return self.partition.near_entries + int(np.minimum(far, nodes).prod(axis=1).sum())

    def describe_estimate(self):
        exact = f", with the exact term ({self.exact_entries} entries)" if self.exact_entries else ""
        if self.nodes:
            return f"a basis of {self.nodes} per cluster and a core per far block" + exact
        if self.expected is None:
            return "every far block at its planned rank" + exact
        return f"ranks sampled on {self.sampled} of {len(self.ranks)} far blocks" + exact


def plan(row_points, col_points, *, leaf_size, eta, rank=None, rank_rule=None, max_rank=64,
         adaptive=False, exact_rank=0):
    """Cluster both point sets, partition the blocks and fix the far blocks' ranks (no kernel needed).

    Parameters
    ----------
    row_points, col_points : array (m, d), (n, d)
    leaf_size : int
        Most points in a leaf cluster.
    eta : float
        Admissibility parameter of eq. 43.
    rank : int, optional
        One rank for every far block.
    rank_rule : callable (m, n) -> int, optional
        A rank per far block from its shape, e.g. ``RankRule`` (section 5.3).
    max_rank : int
        Cap on every far block's rank (and the rank of an adaptive compressor).
    adaptive : bool
        The compressor chooses ranks itself, so ``rank`` and ``rank_rule`` are optional caps.
    exact_rank : int
        Rank of an exact term added to the H-matrix after it is built (``HMatrix.add_exact``), which the
        plan's memory figures count.

    Returns
    -------
    Plan
    """
    admissible = Admissibility(eta)
    max_rank = check_rank(max_rank, "max_rank")
    if rank is not None and rank_rule is not None:
        raise ValueError(f"give rank or rank_rule, not both (got rank={rank!r}, rank_rule={rank_rule!r})")
    if rank is None and rank_rule is None and not adaptive:
        raise ValueError("a fixed-rank compressor needs rank or rank_rule")
    if rank is not None:
        rank = check_rank(rank)
    row_points, col_points = as_points(row_points), as_points(col_points)
    row_tree = ClusterTree(row_points, leaf_size)
    same = row_points.shape == col_points.shape and np.array_equal(row_points, col_points)
    col_tree = row_tree if same else ClusterTree(col_points, leaf_size)
    partition = BlockPartition(row_tree, col_tree, admissible)

    def target(m, n):
        if rank is not None:
            return rank
        return check_rank(rank_rule(m, n), "rank_rule(m, n)") if rank_rule else max_rank

    ranks = np.array([min(max_rank, m, n, target(m, n)) for m, n in partition.shapes("far")],
                     dtype=np.int64)
    return Plan(partition, ranks, exact_rank=int(exact_rank))


#: a sampled group's largest rank is scaled by this (plus one) for the blocks that were not sampled
RANK_MARGIN = 1.25


def sample_ranks(the_plan, kernel, row_points, col_points, compressor, *, samples=8, seed=0,
                 batch_pairs=BATCH_PAIRS):
    """The plan with the ranks an adaptive compressor is expected to reach, from a few far blocks.

    Far blocks are grouped by shape (m and n rounded up to powers of two: one group per level of a
    balanced tree); up to ``samples`` blocks of each group, drawn with ``seed``, are compressed. A group
    sampled whole gets its exact working ranks, any other the largest sampled rank times ``RANK_MARGIN``
    plus one, capped by the plan's ranks. About (rank + 1)(m + n) evaluations per sampled block. A
    fixed-rank compressor's ranks are known already: the plan is returned as it is.
    """
    if not compressor.adaptive:
        return the_plan
    partition, caps = the_plan.partition, the_plan.ranks
    shapes = partition.shapes("far")
    if len(caps) == 0:
        return the_plan._replace(expected=caps.copy())
    groups = np.ceil(np.log2(np.maximum(shapes, 1))).astype(np.int64)
    _, group = np.unique(groups, axis=0, return_inverse=True)
    group = group.ravel()
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(group == g) for g in range(group.max() + 1)]
    picked = [m if len(m) <= samples else np.sort(rng.choice(m, samples, replace=False)) for m in members]
    chosen = np.concatenate(picked)
    evaluator = BlockEvaluator(kernel, row_points, col_points, batch_pairs)
    reached = dict(zip(chosen.tolist(), compressor.working_ranks(
        evaluator, [partition.indices(partition.far[i]) for i in chosen], caps[chosen]).tolist()))
    expected = caps.copy()
    for block_ids, sample in zip(members, picked):
        if len(sample) == len(block_ids):
            expected[block_ids] = [reached[i] for i in block_ids.tolist()]
        else:
            largest = max(reached[i] for i in sample.tolist())
            expected[block_ids] = np.minimum(caps[block_ids], math.ceil(RANK_MARGIN * largest) + 1)
    return the_plan._replace(expected=expected, sampled=len(chosen))


def _compressor(compressor, tol, seed, row_offset, order=None):
    """A compressor object: ``compressor`` itself, or the one of that name with ``tol``, a seed
    combined with ``row_offset`` (so ranks draw independently) and, for "chebyshev", ``order``."""
    if isinstance(compressor, Compressor):
        return compressor
    extra = {} if order is None else {"order": order}
    return make_compressor(compressor, tol=None if tol is None else check_tol(tol), seed=[seed, row_offset],
                           **extra)


def plan_within(kernel, row_points, col_points, max_bytes, *, leaf_size, eta, compressor, rank=None,
                rank_rule=None, tol=None, max_rank=64, seed=0, row_offset=0, rank_samples=8, planned=None,
                batch_pairs=BATCH_PAIRS, exact_rank=0, order=None):
    """The plan ``build`` follows under ``max_bytes`` (None: no limit), from the same arguments.

    An adaptive compressor whose bound (every far block at its cap) passes ``max_bytes`` gets its ranks
    sampled (``sample_ranks``); ``planned``, a plan made already, is completed the same way.
    """
    compressor = _compressor(compressor, tol, seed, row_offset, order)
    the_plan = planned if planned is not None else plan(
        row_points, col_points, leaf_size=leaf_size, eta=eta, rank=rank, rank_rule=rank_rule,
        max_rank=max_rank, adaptive=compressor.adaptive, exact_rank=exact_rank)
    if compressor.shared_bases:
        the_plan = the_plan._replace(nodes=compressor.cluster_nodes(as_points(row_points).shape[1]))
    if (max_bytes is None or the_plan.bound_bytes() <= max_bytes or not compressor.adaptive
            or the_plan.expected is not None):
        return the_plan
    return sample_ranks(the_plan, kernel, row_points, col_points, compressor, samples=rank_samples,
                        seed=seed, batch_pairs=batch_pairs)


@dataclass(eq=False)
class NearBlock:
    """A dense block K(rows, cols); rows and cols are user indices."""

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray

    def entries(self, i, j):
        """Entries at local positions (i, j)."""
        return self.values[i, j]

    def apply(self, x):
        return self.values @ x

    def triplets(self):
        return _dense_triplets(self.rows, self.cols, self.values)


@dataclass(eq=False)
class FarBlock:
    """A low-rank block K(rows, cols) ~= u v^T, or u core v^T when u and v are bases that the blocks of
    one cluster share (``Chebyshev``); rows and cols are user indices."""

    rows: np.ndarray
    cols: np.ndarray
    u: np.ndarray
    v: np.ndarray
    core: Optional[np.ndarray] = None

    @property
    def rank(self):
        """Terms of u v^T; with a core, the most its u core v^T can have."""
        return self.u.shape[1] if self.core is None else min(self.core.shape)

    @property
    def factor(self):
        """U with K ~= U v^T: u, or u core (formed here, for small uses such as tests)."""
        return self.u if self.core is None else self.u @ self.core

    def entries(self, i, j):
        """Entries at local positions (i, j)."""
        left = self.u[i] if self.core is None else self.u[i] @ self.core
        return np.einsum("kr,kr->k", left, self.v[j])

    def apply(self, x):
        inner = self.v.T @ x
        return self.u @ (inner if self.core is None else self.core @ inner)


def low_rank_entries(blocks, coupled):
    """Entries that the low-rank ``blocks`` store: r (m + n) for a block of its own factors; for blocks
    on shared bases each basis once and each core; and when the terms are ``coupled`` (``Plan.nodes``:
    the H-matrix has shared bases on some rank), r more per block of its own factors, its terms'
    coupling (``hmatrix.petsc``)."""
    plain = [b for b in blocks if b.core is None]
    cored = [b for b in blocks if b.core is not None]
    bases = {id(a): a.size for b in cored for a in (b.u, b.v)}
    coupling = sum(b.rank for b in plain) if coupled else 0
    return int(sum(b.rank * (b.u.shape[0] + b.v.shape[0]) for b in plain) + sum(bases.values())
               + sum(b.core.size for b in cored) + coupling)


def _dense_triplets(rows, cols, values):
    """(rows, cols, values) of a dense block values[i, j] at (rows[i], cols[j]), row-major."""
    return np.repeat(rows, len(cols)), np.tile(cols, len(rows)), values.ravel()


class Triplets(NamedTuple):
    """A sparse matrix as COO triplets."""

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray


class CooPieces(NamedTuple):
    """y = N x + U (Vt x): N (local rows x columns), U (local rows x terms), Vt (terms x columns).

    ``terms`` is the number of rank-one terms R on this rank (U's columns, Vt's rows).
    """

    near: Triplets
    u: Triplets
    vt: Triplets
    terms: int


@dataclass(frozen=True)
class Storage:
    """What the H-matrix stores, against the dense m x n block it replaces."""

    rows: int
    cols: int
    near_blocks: int
    far_blocks: int
    near_entries: int
    far_entries: int
    max_rank: int
    mean_rank: float
    exact_rank: int = 0        # of the exact terms over the whole matrix (HMatrix.add_exact)

    @property
    def entries(self):
        return self.near_entries + self.far_entries

    @property
    def bytes(self):
        return ENTRY_BYTES * self.entries

    @property
    def compression_ratio(self):
        """Dense entries m n over stored entries (0 for a rank without rows)."""
        return self.rows * self.cols / max(self.entries, 1)

    @property
    def entries_per_row(self):
        return self.entries / max(self.rows, 1)


class HMatrix:
    """An H-matrix in user numbering: ``near`` dense blocks and ``far`` low-rank blocks.

    Attributes
    ----------
    row_points, col_points : ndarray (m, d), (n, d)
    plan : Plan
        The partition and planned ranks it was built from.
    near : list of NearBlock
    far : list of FarBlock
    exact : list of FarBlock
        Low-rank terms over the whole matrix, given exactly (``add_exact``): a part of the kernel that
        is of low rank everywhere and so is not compressed block by block.
    row_offset : int
        Global index of the first row (the rank's first owned point).
    evaluations : int
        Kernel evaluations (pairs) the build made.
    kernel_calls : int
        Kernel calls the build made.
    build_seconds : float
    """

    def __init__(self, row_points, col_points, plan, near, far, row_offset=0):
        self.row_points, self.col_points, self.plan = row_points, col_points, plan
        self.near, self.far = near, far
        self.exact = []
        self.row_offset = row_offset
        self.evaluations = self.kernel_calls = 0
        self.build_seconds = 0.0

    @property
    def shape(self):
        return len(self.row_points), len(self.col_points)

    @property
    def partition(self):
        return self.plan.partition

    @property
    def ranks(self):
        """The rank of each far block, as built."""
        return np.array([block.rank for block in self.far], dtype=np.int64)

    def add_exact(self, u, v):
        """Add u v^T (u (m, r), v (n, r)) to the whole matrix: the kernel that was compressed is the
        rest of the one this H-matrix stands for."""
        m, n = self.shape
        u, v = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)
        if u.shape[0] != m or v.shape[0] != n or u.shape[1] != v.shape[1]:
            raise ValueError(f"an exact term of a {m} x {n} H-matrix needs u (m, r) and v (n, r), got "
                             f"{u.shape} and {v.shape}")
        self.exact.append(FarBlock(np.arange(m), np.arange(n), u, v))

    @property
    def coupled(self):
        """Whether far blocks share bases (``Plan.nodes``, the same on every rank, whether or not it has
        far blocks): the terms are then coupled by C in ``hmatrix.petsc``."""
        return bool(self.plan.nodes)

    @property
    def low_rank(self):
        """The far blocks, then the exact terms: every U V^T piece."""
        return self.far + self.exact

    def matvec(self, x):
        """y = H x for x of shape (n,) or (n, k)."""
        x = np.asarray(x, dtype=np.float64)
        y = np.zeros((self.shape[0],) + x.shape[1:])
        for block in self.near + self.low_rank:
            y[block.rows] += block.apply(x[block.cols])
        return y

    def to_dense(self):
        """The dense m x n matrix the H-matrix represents (for tests and small problems)."""
        return self.matvec(np.eye(self.shape[1]))

    def to_coo(self):
        """The three sparse pieces of y = N x + U (Vt x), in user numbering.

        Rows of N and U are local row indices, columns of N and Vt column indices; the rank-one terms
        are numbered 0..R-1 on this rank, far block by far block (a block on shared bases with its own
        factors u core and v: ``hmatrix.petsc`` stores those bases once).
        """
        blocks = self.low_rank
        offsets = np.concatenate([[0], np.cumsum([block.v.shape[1] for block in blocks], dtype=np.int64)])
        terms = [np.arange(a, b) for a, b in zip(offsets[:-1], offsets[1:])]
        near = [block.triplets() for block in self.near]
        u = [_dense_triplets(block.rows, term, block.factor) for block, term in zip(blocks, terms)]
        vt = [_dense_triplets(term, block.cols, block.v.T) for block, term in zip(blocks, terms)]
        return CooPieces(*(_concatenate(pieces) for pieces in (near, u, vt)), terms=int(offsets[-1]))

    @property
    def storage(self):
        """Storage figures (entries, bytes, compression ratio, ranks, block counts)."""
        ranks = self.ranks
        return Storage(
            rows=self.shape[0], cols=self.shape[1], near_blocks=len(self.near), far_blocks=len(self.far),
            near_entries=int(sum(block.values.size for block in self.near)),
            far_entries=low_rank_entries(self.low_rank, self.coupled),
            max_rank=int(ranks.max(initial=0)), mean_rank=float(ranks.mean()) if ranks.size else 0.0,
            exact_rank=sum(block.rank for block in self.exact))

    def check(self, kernel, samples=1000, seed=0):
        """Mean relative error of ``samples`` entries drawn uniformly against direct kernel evaluation.

        The a posteriori check of section 4: entries come from near and far blocks in proportion to
        their sizes. The relative error of an entry whose exact value is zero is measured against
        1e-12 of the largest sampled value, so a spurious value there still counts.
        """
        blocks = self.near + self.far
        sizes = np.array([block.rows.size * block.cols.size for block in blocks], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(sizes)])
        if starts[-1] == 0:
            return 0.0  # no rows on this rank: nothing to be wrong
        flat = np.random.default_rng(seed).integers(0, starts[-1], size=int(samples))
        which = np.searchsorted(starts, flat, side="right") - 1
        local = flat - starts[which]
        approx = np.empty(len(flat))
        rows, cols = np.empty(len(flat), dtype=np.int64), np.empty(len(flat), dtype=np.int64)
        for b in np.unique(which):
            picked = which == b
            block = blocks[b]
            i, j = np.divmod(local[picked], block.cols.size)
            approx[picked] = block.entries(i, j)
            rows[picked], cols[picked] = block.rows[i], block.cols[j]
        for block in self.exact:
            approx += block.entries(rows, cols)
        exact = kernel(self.row_points[rows], self.col_points[cols])
        scale = np.maximum(np.abs(exact), max(1e-12 * np.abs(exact).max(), np.finfo(float).tiny))
        return float(np.mean(np.abs(approx - exact) / scale))


def _concatenate(triplets):
    if not triplets:
        return Triplets(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0))
    return Triplets(*(np.concatenate(part) for part in zip(*triplets)))


def build(kernel, row_points, col_points, *, leaf_size, eta, compressor, rank=None, rank_rule=None,
          tol=None, max_rank=64, seed=0, row_offset=0, max_bytes=None, rank_samples=8, planned=None,
          batch_pairs=BATCH_PAIRS, exact_rank=0, order=None):
    """Build the H-matrix of ``kernel`` on row_points x col_points.

    Parameters
    ----------
    kernel : Kernel
    row_points : array (m, d)
        The rows: on an MPI rank, the points it owns (possibly none).
    col_points : array (n, d)
        The columns: all points.
    leaf_size : int
        Most points in a leaf cluster.
    eta : float
        Admissibility parameter of eq. 43.
    compressor : str or Compressor
        A key of ``COMPRESSORS`` ("nystrom", "nystrom_nearest", "aca", "chebyshev"), built with
        ``tol``, ``seed`` (and ``order``), or a compressor object, which keeps its own settings.
    rank, rank_rule : int or callable (m, n) -> int, optional
        Fixed rank, or a rank per block (``RankRule``); required by the Nystrom compressors.
    tol : float in (0, 1), optional
        Relative accuracy of a far block (required by "aca"; an extra truncation for Nystrom).
    max_rank : int
        Cap on every far block's rank.
    seed : int
        Seed of the random choices; combined with ``row_offset`` so ranks draw independently.
    row_offset : int
        Global index of the first row point.
    max_bytes : int, optional
        Refuse (``MemoryLimitError``) before any kernel evaluation when the plan's bound is more; for an
        adaptive compressor whose bound (every far block at ``max_rank``) is more, refuse when the ranks
        sampled on a few blocks (``sample_ranks``) say so, and stop the compression as soon as its
        factors pass what the near field leaves.
    rank_samples : int
        Far blocks per shape group that ``sample_ranks`` compresses for that estimate.
    planned : Plan, optional
        The plan of these points and settings, made already (e.g. to choose a format).
    batch_pairs : int
        Most pairs per kernel call.
    exact_rank : int
        Rank of the exact term the caller adds afterwards (``HMatrix.add_exact``): ``max_bytes`` covers
        it too.
    order : int, optional
        Chebyshev points per axis of the "chebyshev" compressor.

    Returns
    -------
    HMatrix
    """
    started = time.perf_counter()
    compressor = _compressor(compressor, tol, seed, row_offset, order)
    row_points, col_points = kernel.check_points(row_points, "row point"), kernel.check_points(
        col_points, "column point")
    the_plan = plan_within(kernel, row_points, col_points, max_bytes, leaf_size=leaf_size, eta=eta,
                           compressor=compressor, rank=rank, rank_rule=rank_rule, max_rank=max_rank,
                           seed=seed, rank_samples=rank_samples, planned=planned,
                           batch_pairs=batch_pairs, exact_rank=exact_rank)
    max_entries = None
    if max_bytes is not None and the_plan.bound_bytes() > max_bytes:
        if the_plan.estimate_bytes() > max_bytes:
            raise MemoryLimitError(f"the H-matrix may need {the_plan.estimate_bytes() / 2**20:.1f} MiB "
                                   f"({the_plan.describe_estimate()}), more than the limit of "
                                   f"{max_bytes / 2**20:.1f} MiB")
        max_entries = max_bytes // ENTRY_BYTES - the_plan.partition.near_entries - the_plan.exact_entries
    partition = the_plan.partition
    evaluator = BlockEvaluator(kernel, row_points, col_points, batch_pairs)
    evaluations = kernel.evaluations
    near_index = [partition.indices(block) for block in partition.near]
    near = [NearBlock(rows, cols, values)
            for (rows, cols), values in zip(near_index, evaluator(near_index))]
    far_index = [partition.indices(block) for block in partition.far]
    far = [FarBlock(rows, cols, *factors)
           for (rows, cols), factors in zip(far_index, compressor.compress(evaluator, far_index,
                                                                           the_plan.ranks, max_entries))]
    hmatrix = HMatrix(row_points, col_points, the_plan, near, far, row_offset)
    hmatrix.evaluations = kernel.evaluations - evaluations
    hmatrix.kernel_calls = evaluator.calls
    hmatrix.build_seconds = time.perf_counter() - started
    return hmatrix
