"""Low-rank approximations K(I, J) ~= U V^T of admissible blocks from kernel evaluations only.

No compressor ever evaluates a whole admissible block: Nystrom (skeleton / CUR) evaluates the rows and
columns of a few landmark points, adaptive cross approximation one row and one column per rank-one
term. Both work on all far blocks at once through a ``BlockEvaluator``, so the kernel sees few large
calls: Nystrom makes one pass, ACA two passes per step of the slowest block.
"""
import math
from functools import partial

import numpy as np

from .batch import BlockEvaluator

#: bytes per stored entry (float64)
ENTRY_BYTES = 8


class MemoryLimitError(RuntimeError):
    """The H-matrix would need more memory than allowed: raised before any kernel evaluation when the
    plan says so, or by an adaptive compressor as soon as its factors pass the budget."""


def check_tol(tol, name="tol"):
    """``tol`` as a float in (0, 1), or a ValueError naming it."""
    try:
        valid = not isinstance(tol, bool) and 0.0 < tol < 1.0
    except TypeError:
        valid = False
    if not valid:
        raise ValueError(f"{name} must be a number in (0, 1), got {tol!r}")
    return float(tol)


def check_rank(rank, name="rank"):
    """``rank`` as a positive int, or a ValueError naming it."""
    try:
        valid = not isinstance(rank, bool) and float(rank).is_integer() and rank > 0
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"{name} must be a positive integer, got {rank!r}")
    return int(rank)


def truncate(u, v, rank=None, tol=None):
    """Recompress U V^T to at most ``rank`` terms and to relative Frobenius accuracy ``tol``.

    QR of both factors and an SVD of the small core: the result has orthogonal columns in V, the
    singular values folded into U, and drops exactly-zero directions.
    """
    if u.shape[1] == 0:
        return u, v
    qu, ru = np.linalg.qr(u)
    qv, rv = np.linalg.qr(v)
    left, right = svd_factors(ru @ rv.T, rank, tol)
    return qu @ left, qv @ right


def svd_factors(block, rank=None, tol=None, rcond=0.0):
    """Truncated SVD factors (U, V) of a dense ``block``, U V^T ~= block.

    The best approximation with at most ``rank`` terms, none for a singular value at or below
    ``rcond`` times the largest, and, when ``tol`` is given, the fewest terms whose relative Frobenius
    error is at most ``tol``.
    """
    x, s, yt = np.linalg.svd(block, full_matrices=False)
    keep = kept_terms(s, rank, tol, rcond)
    return x[:, :keep] * s[:keep], yt[:keep].T


def kept_terms(s, rank=None, tol=None, rcond=0.0):
    """How many of the singular values ``s`` (descending) ``svd_factors`` keeps."""
    keep = int(np.count_nonzero(s > rcond * s[0])) if s.size else 0
    if rank is not None:
        keep = min(keep, rank)
    if tol is not None:
        # tails[k] = ||s[k:]||, the Frobenius error of keeping k terms
        tails = np.sqrt(np.concatenate([np.cumsum((s ** 2)[::-1])[::-1], [0.0]]))
        keep = min(keep, int(np.argmax(tails <= tol * tails[0])))
    return keep


class Compressor:
    """A strategy that compresses many blocks: ``compress(evaluator, blocks, ranks) -> [(U, V)]``, or
    ``[(U, V, core)]`` with K ~= U core V^T on bases shared by each cluster's blocks (``shared_bases``).

    ``blocks`` are (row indices, column indices) into the evaluator's points and ``ranks`` one target
    rank (or rank cap, for adaptive compressors) per block. ``max_entries`` bounds the entries of all
    factors together: a fixed-rank compressor's are known from ``ranks`` before it starts (the plan
    checks them), an adaptive one raises ``MemoryLimitError`` when it passes the bound.
    """

    name = "compressor"
    #: the rank adapts to a tolerance (ranks are caps), rather than being the target
    adaptive = False
    #: ``compress`` gives (U, V, core), U and V shared by the blocks of one cluster (K ~= U core V^T)
    shared_bases = False

    def compress(self, evaluator, blocks, ranks, max_entries=None):
        raise NotImplementedError

    def working_ranks(self, evaluator, blocks, ranks):
        """The most terms each block holds while it is compressed: its target rank, if fixed."""
        return np.asarray(ranks, dtype=np.int64)

    def __call__(self, kernel, rows, cols, rank=None):
        """(U, V) with K(rows, cols) ~= U V^T for one block given by its points (m, d) and (n, d)."""
        rows, cols = (np.asarray(p, dtype=np.float64).reshape(len(p), -1) for p in (rows, cols))
        evaluator = BlockEvaluator(kernel, rows, cols)
        factors = self.compress(evaluator, [(np.arange(len(rows)), np.arange(len(cols)))], [rank])[0]
        return (factors[0] @ factors[2], factors[1]) if self.shared_bases else factors


class Nystrom(Compressor):
    """Skeleton (CUR) approximation K(I, J) ~= K(I, Jl) K(Il, Jl)^+ K(Il, J) on landmark points.

    ``oversampling * rank`` landmarks are taken on each side, the cross approximation is formed with a
    pseudo-inverse truncated at ``rcond`` (so noisy or exactly low-rank cores stay stable), and the
    result is truncated to ``rank`` (and to ``tol`` when given) by an SVD of its small factors. A block
    smaller than its landmark rows and columns together is evaluated whole and truncated by its SVD:
    fewer evaluations, and the best approximation of that rank.

    Parameters
    ----------
    landmarks : {"random", "nearest"}
        "random": landmarks drawn uniformly without replacement (section 5.3, oversampling 2).
        "nearest": the points nearest to a tensor grid of Chebyshev points spread over each cluster's
        bounding box (section 5.2, rank 3 truncated to rank 1 in 1D).
    oversampling : float
        Landmarks per side per unit of target rank.
    rcond : float
        Singular values of the landmark core (or of a block evaluated whole) at or below rcond times
        the largest are dropped: they carry rounding noise, not the kernel.
    tol : float or None
        Optional relative accuracy of the final truncation.
    seed : int or sequence of int
        Seed of the random landmarks.
    """

    def __init__(self, landmarks="random", oversampling=None, rcond=1e-10, tol=None, seed=0):
        if landmarks not in ("random", "nearest"):
            raise ValueError(f"landmarks must be 'random' or 'nearest', got {landmarks!r}")
        self.landmarks = landmarks
        self.name = "nystrom" if landmarks == "random" else "nystrom_nearest"
        self.oversampling = float(oversampling or (2.0 if landmarks == "random" else 3.0))
        if self.oversampling < 1.0:
            raise ValueError(f"oversampling must be at least 1, got {oversampling!r}")
        self.rcond = float(rcond)
        self.tol = None if tol is None else check_tol(tol)
        self.seed = seed

    def compress(self, evaluator, blocks, ranks, max_entries=None):
        rng = np.random.default_rng(self.seed)
        requests, row_landmarks = [], []
        for (rows, cols), rank in zip(blocks, ranks):
            count = math.ceil(self.oversampling * check_rank(rank))
            row_marks = self._landmarks(evaluator.row_points[rows], count, rng)
            col_marks = self._landmarks(evaluator.col_points[cols], count, rng)
            if len(rows) * len(col_marks) + len(row_marks) * len(cols) >= len(rows) * len(cols):
                # the landmark rows and columns would cost more than the whole (small) block
                requests.append((rows, cols))
                row_landmarks.append(None)
            else:
                requests += [(rows, cols[col_marks]), (rows[row_marks], cols)]
                row_landmarks.append(row_marks)
        values = iter(evaluator(requests))
        return [svd_factors(next(values), rank, self.tol, self.rcond) if marks is None
                else self._cross(next(values), next(values), marks, rank)
                for marks, rank in zip(row_landmarks, ranks)]

    def _landmarks(self, points, count, rng):
        """Local indices of distinct landmark points among ``points``: ``count`` random ones, or the
        nearest to each node of a p^a Chebyshev grid (p^a >= count, a the box's non-flat axes)."""
        if count >= len(points):
            return np.arange(len(points))
        if self.landmarks == "random":
            return np.sort(rng.choice(len(points), size=count, replace=False))
        low, high = points.min(axis=0), points.max(axis=0)
        spread = np.flatnonzero(high > low)
        per_axis = math.ceil(count ** (1.0 / max(len(spread), 1)))
        # Chebyshev points of the first kind: the interpolation nodes that keep a polynomial
        # interpolant of a smooth kernel stable, mapped onto the cluster's box
        nodes = np.cos((2 * np.arange(per_axis) + 1) * np.pi / (2 * per_axis))
        axes = [0.5 * (low[a] + high[a]) + 0.5 * (high[a] - low[a]) * nodes if a in spread
                else np.array([low[a]]) for a in range(points.shape[1])]
        targets = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], axis=1)
        distances = ((points[:, None, :] - targets[None, :, :]) ** 2).sum(axis=2)
        return np.unique(np.argmin(distances, axis=0))

    def _cross(self, columns, rows, row_marks, rank):
        """Truncated factors of C W^+ R, with C = K(I, Jl), R = K(Il, J) and W = K(Il, Jl) = C[Il]."""
        x, s, yt = np.linalg.svd(columns[row_marks], full_matrices=False)
        keep = s > self.rcond * s[0]
        # split W^+ = Y S^-1 X^T evenly between the factors so neither carries the whole scaling
        root = np.sqrt(s[keep])
        u = columns @ (yt[keep].T / root)
        v = rows.T @ (x[:, keep] / root)
        return truncate(u, v, rank=rank, tol=self.tol)


class ACA(Compressor):
    """Adaptive cross approximation with partial pivoting, to a relative tolerance.

    Step k evaluates one residual row (pivot row i) and one residual column (its largest entry j),
    adds the term u_k v_k^T, and stops when ||u_k|| ||v_k|| <= tol ||S_k||_F, the Frobenius norm of the
    approximation so far updated in O((m + n) k). All blocks advance in lockstep, so a step costs
    two kernel calls for all of them together.

    Parameters
    ----------
    tol : float in (0, 1)
    max_rank : int
        Terms per block at most (also capped by the block's ``ranks`` entry when one is given).
    recompress : bool
        Recompress the result by QR and SVD to ``tol`` (ACA's terms are not orthogonal).
    zero_rows : int
        Consecutive exactly-zero residual rows (e.g. boundary points, where a Green's function
        vanishes) tolerated before a block is declared converged; after each, a probe column
        points to a nonzero row.
    seed : int or sequence of int
        Seed of the probe columns and of the rows tried when a probe column is zero too.
    """

    name = "aca"
    adaptive = True

    def __init__(self, tol, max_rank=64, recompress=True, zero_rows=3, seed=0):
        self.tol = check_tol(tol)
        self.max_rank = check_rank(max_rank, "max_rank")
        self.recompress = bool(recompress)
        self.zero_rows = int(zero_rows)
        self.seed = seed

    def compress(self, evaluator, blocks, ranks, max_entries=None):
        states = self._cross(evaluator, blocks, ranks, max_entries)
        factors = [(s.u[:, :s.rank], s.v[:, :s.rank]) for s in states]
        if self.recompress:
            factors = [truncate(u, v, tol=self.tol) for u, v in factors]
        return factors

    def working_ranks(self, evaluator, blocks, ranks):
        """The cross ranks reached before recompression: the factors' size while compressing."""
        return np.array([s.rank for s in self._cross(evaluator, blocks, ranks)], dtype=np.int64)

    def _cross(self, evaluator, blocks, ranks, max_entries=None):
        rng = np.random.default_rng(self.seed)
        states = [_CrossState(rows, cols, evaluator.row_points[rows], evaluator.col_points[cols],
                              min(self.max_rank, len(rows), len(cols), rank or self.max_rank))
                  for (rows, cols), rank in zip(blocks, ranks)]
        active = [state for state in states if state.cap > 0]
        entries = 0
        while active:
            residual_rows = evaluator([(s.rows[[s.pivot]], s.cols) for s in active])
            pivoting = []
            for state, row in zip(active, residual_rows):
                if state.take_row(row[0], self.zero_rows, rng):
                    pivoting.append(state)
            residual_cols = evaluator([(s.rows, s.cols[[s.pivot_col]]) for s in pivoting])
            for state, column in zip(pivoting, residual_cols):
                rank = state.rank
                state.take_column(column[:, 0], self.tol, rng)
                entries += (state.rank - rank) * (len(state.rows) + len(state.cols))
            if max_entries is not None and entries > max_entries:
                raise MemoryLimitError(f"ACA's factors passed {max_entries * ENTRY_BYTES / 2**20:.1f} MiB "
                                       f"(the memory left after the near field) with "
                                       f"{len(active)} of {len(states)} far blocks still growing")
            active = [state for state in active if not state.done]
        return states


class _CrossState:
    """One block's partially pivoted ACA: its factors, the used rows and the norm estimate."""

    def __init__(self, rows, cols, row_points, col_points, cap):
        self.rows, self.cols, self.cap = rows, cols, cap
        # factors grow by doubling: most blocks stop far below the cap, and thousands of blocks
        # preallocated at the cap would hold many times the H-matrix's memory
        self.u = np.zeros((len(rows), min(cap, 4)))
        self.v = np.zeros((len(cols), min(cap, 4)))
        self.rank = 0
        self.used = np.zeros(len(rows), dtype=bool)
        # start at the row (and probe first the column) nearest the cluster's centre: away from the
        # boundary, where a Green's function vanishes
        self.pivot = _nearest_centre(row_points)
        self.probe = _nearest_centre(col_points)
        self.pivot_col = -1
        self.pending = None
        self.norm2 = 0.0
        self.zero_streak = 0
        self.done = cap == 0

    def take_row(self, row, zero_rows, rng):
        """Form the residual of the pivot row and choose the column to evaluate next.

        A zero residual row (a boundary point, or a block already exact) gives no pivot: a probe column
        is evaluated instead, whose largest residual entry names a row that is not zero. Returns False
        when the block is done.
        """
        k = self.rank
        residual = row - self.u[self.pivot, :k] @ self.v[:, :k].T
        self.used[self.pivot] = True
        j = int(np.argmax(np.abs(residual)))
        if residual[j] != 0.0:
            self.pending, self.pivot_col = residual / residual[j], j
            return True
        self.zero_streak += 1
        self.done = self.zero_streak > zero_rows or self.used.all()
        if self.done:
            return False
        self.pending, self.pivot_col = None, self.probe
        self.probe = int(rng.integers(len(self.cols)))
        return True

    def take_column(self, column, tol, rng):
        """Form the residual column, add the term unless it was a probe, and choose the next row."""
        k = self.rank
        u = column - self.u[:, :k] @ self.v[self.pivot_col, :k]
        if self.pending is not None:
            v = self.pending
            # ||S_k||_F^2 = ||S_{k-1}||_F^2 + 2 sum_l (u_l.u)(v_l.v) + |u|^2 |v|^2
            self.norm2 += 2.0 * (self.u[:, :k].T @ u) @ (self.v[:, :k].T @ v) + (u @ u) * (v @ v)
            if k == self.u.shape[1]:
                width = min(self.cap, 2 * k)
                self.u = np.pad(self.u, ((0, 0), (0, width - k)))
                self.v = np.pad(self.v, ((0, 0), (0, width - k)))
            self.u[:, k], self.v[:, k] = u, v
            self.rank = k + 1
            self.zero_streak = 0
            converged = math.sqrt((u @ u) * (v @ v)) <= tol * math.sqrt(max(self.norm2, 0.0))
            self.done = converged or self.rank == self.cap or self.used.all()
            if self.done:
                return
        score = np.abs(u)
        score[self.used] = -1.0
        best = int(np.argmax(score))
        self.pivot = best if score[best] > 0 else int(rng.choice(np.flatnonzero(~self.used)))


class Chebyshev(Compressor):
    """Tensor Chebyshev interpolation on the clusters' bounding boxes: K(I, J) ~= L_I K(X_I, X_J) L_J^T.

    X_I are the p^a Chebyshev points (first kind) of I's box, a its non-flat axes, and L_I the Lagrange
    basis of those nodes at I's points. A block costs p^2a kernel evaluations at the nodes (256 for
    p = 4 in 2D) and none at the points themselves, against ACA's (rank + 1)(m + n); a cluster of at
    most p^a points is its own node set (so a block never costs more than its m n entries). All blocks'
    cores go to the kernel through one ``BlockEvaluator`` over the clusters' nodes.
    Each block is returned as (L_I, L_J, core) with one basis array per cluster, shared by all of its
    blocks, so an H-matrix stores each basis once and a p^a x p^a core per block (uniform bases):
    conv2d at N = 256, 805 entries a point against 2618 for per-block factors recompressed to 1e-4.
    Accurate where the kernel is smooth over both boxes, which admissibility gives: the error decays
    geometrically in p at a rate set by the boxes' separation (eta).

    Parameters
    ----------
    order : int
        Chebyshev points per axis (p).
    tol, seed : ignored (the interpolant is not truncated, the nodes are deterministic), accepted like
        the other compressors'.
    """

    name = "chebyshev"
    #: blocks come as (row basis, column basis, core) on bases shared between blocks
    shared_bases = True

    def __init__(self, order=4, tol=None, seed=None):
        self.order = check_rank(order, "order")

    def cluster_nodes(self, dim):
        """Nodes (basis functions) of a cluster's box in ``dim`` dimensions, at most."""
        return self.order ** dim

    def compress(self, evaluator, blocks, ranks, max_entries=None):
        # each cluster's nodes and basis once, its nodes laid end to end per side: the cores are then
        # blocks of a BlockEvaluator over the nodes, which batches them into few kernel calls
        sides = [_NodeSets(self.order, evaluator.row_points), _NodeSets(self.order, evaluator.col_points)]
        pairs = [(sides[0].add(rows), sides[1].add(cols)) for rows, cols in blocks]
        nodes = BlockEvaluator(evaluator.kernel, sides[0].nodes(), sides[1].nodes(), evaluator.batch_pairs)
        cores = nodes([(sides[0].span(r), sides[1].span(c)) for r, c in pairs])
        evaluator.calls += nodes.calls
        return [(sides[0].basis[r], sides[1].basis[c], core) for (r, c), core in zip(pairs, cores)]


class _NodeSets:
    """The Chebyshev nodes and Lagrange bases of the clusters on one side of a set of blocks, each
    cluster once; a cluster of no more points than nodes is its own node set (basis: the identity)."""

    def __init__(self, order, points):
        self.order, self.points = order, points
        self.ids, self.basis, self._nodes, self.starts = {}, [], [], [0]

    def add(self, index):
        """The cluster of the points ``index``: its number on this side."""
        key = index.tobytes()
        if key not in self.ids:
            here = self.points[index]
            nodes, basis = chebyshev_basis(here, self.order)
            if len(nodes) >= len(here):
                nodes, basis = here, np.eye(len(here))
            self.ids[key] = len(self.basis)
            self.basis.append(basis)
            self._nodes.append(nodes)
            self.starts.append(self.starts[-1] + len(nodes))
        return self.ids[key]

    def span(self, cluster):
        """Indices of the cluster's nodes in ``nodes()``."""
        return np.arange(self.starts[cluster], self.starts[cluster + 1])

    def nodes(self):
        return np.concatenate(self._nodes) if self._nodes else self.points[:0]


def chebyshev_basis(points, order):
    """(nodes (q, d), basis (m, q)): the tensor grid of ``order`` Chebyshev points of the first kind per
    non-flat axis of the points' bounding box (one node on a flat axis), and the Lagrange basis
    polynomials of that grid at the points (rows sum to 1)."""
    low, high = points.min(axis=0), points.max(axis=0)
    unit = np.cos((2 * np.arange(order) + 1) * np.pi / (2 * order))
    others = ~np.eye(order, dtype=bool)
    axes_nodes, axes_basis = [], []
    for a in range(points.shape[1]):
        if high[a] <= low[a]:
            axes_nodes.append(np.array([low[a]]))
            axes_basis.append(np.ones((len(points), 1)))
            continue
        nodes = 0.5 * (low[a] + high[a]) + 0.5 * (high[a] - low[a]) * unit
        # l_k(x) = prod_{j != k} (x - x_j) / (x_k - x_j)
        gaps = np.where(others, nodes[:, None] - nodes[None, :], 1.0).prod(axis=1)
        diff = points[:, a, None] - nodes[None, :]                            # (m, p)
        products = np.where(others[None], diff[:, None, :], 1.0).prod(axis=2)  # (m, p): over j != k
        axes_nodes.append(nodes)
        axes_basis.append(products / gaps)
    grid = np.meshgrid(*axes_nodes, indexing="ij")
    nodes = np.stack([g.ravel() for g in grid], axis=1)
    basis = axes_basis[0]
    for more in axes_basis[1:]:
        basis = (basis[:, :, None] * more[:, None, :]).reshape(len(points), -1)
    return nodes, basis


def _nearest_centre(points):
    """Index of the point nearest the centre of the points' bounding box."""
    centre = 0.5 * (points.min(axis=0) + points.max(axis=0))
    return int(np.argmin(((points - centre) ** 2).sum(axis=1)))


class RankRule:
    """The paper's rank rule (section 5.3): a base rank, scaled by log(n_b) / log(n_l) for large blocks.

    n_b = min(rows, cols) of the block and n_l the leaf size; blocks with n_b <= n_l get the base rank.
    """

    def __init__(self, base_rank, leaf_size):
        self.base_rank = check_rank(base_rank, "base_rank")
        if leaf_size < 2:
            raise ValueError(f"the rank rule needs leaf_size >= 2 (it divides by log(leaf_size)), "
                             f"got {leaf_size!r}")
        self.leaf_size = int(leaf_size)

    def __call__(self, m, n):
        n_b = min(m, n)
        if n_b <= self.leaf_size:
            return self.base_rank
        return math.ceil(self.base_rank * math.log(n_b) / math.log(self.leaf_size))

    def __repr__(self):
        return f"RankRule(base_rank={self.base_rank}, leaf_size={self.leaf_size})"


def paper_base_rank(n_grid):
    """The paper's base rank in 2D (section 5.3): 10 for N <= 64 points per direction, else 20."""
    return 10 if n_grid <= 64 else 20


COMPRESSORS = {
    "nystrom": partial(Nystrom, landmarks="random"),
    "nystrom_nearest": partial(Nystrom, landmarks="nearest"),
    "aca": ACA,
    "chebyshev": Chebyshev,
}


def make_compressor(name, **options):
    """The compressor called ``name`` (a key of COMPRESSORS) built with ``options``."""
    if name not in COMPRESSORS:
        raise ValueError(f"unknown compressor {name!r}; choose one of {', '.join(COMPRESSORS)}")
    return COMPRESSORS[name](**options)
