"""The kernel matrix K_ij = G(x_i, x_j) w_j on this rank's rows, assembled as PETSc matrices.

Three formats, one interface (``ApproximateInverse``): dense (every entry), sparse (section 4: the p
largest entries within a radius, found with a KD-tree) and the H-matrix (``greenpc.hmatrix``: near field
N plus U (Vt x)). Only interior points carry kernel entries; ``choose`` implements the decay test of
eq. 42 for ``-greenpc_format auto``. Each builder evaluates the kernel (rank-local, may fail) in a
nested ``collective.run`` before it creates PETSc matrices (collective), so a failure on one rank never
leaves the others waiting in an assembly.
"""
import contextlib
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from petsc4py import PETSc
from scipy.spatial import cKDTree

from ..petsc_mats import aij_from_coo
from . import collective

ENTRY_BYTES = 8
INDEX_BYTES = np.dtype(PETSc.IntType).itemsize
DENSE_ROW_CHUNK_PAIRS = 1 << 21


class FormatError(ValueError):
    pass


@dataclass
class ApproximateInverse:
    """M (as PETSc objects) with what it stores; ``mult`` is PETSc's own product."""

    kind: str
    mat: object  # PETSc.Mat, or hmatrix.petsc.PetscHMatrix
    entries: int  # stored entries on this rank
    bytes: int
    evaluations: int
    info: dict = field(default_factory=dict)
    # the diagonal of the H-matrix's exact terms on this rank's rows (N holds the rest), or None
    diagonal_offset: object = None
    # KnownValues: kernel values the build evaluated, which the fit may look up (sparse), or None
    known: object = None

    @property
    def near(self):
        """The matrix holding the diagonal (N for the H-matrix)."""
        return self.mat.near if self.kind == "hmatrix" else self.mat

    def get_diagonal(self, vec):
        """The operator's diagonal (N's plus the exact terms')."""
        self.near.getDiagonal(vec)
        if self.diagonal_offset is not None:
            vec.setArray(vec.getArray(readonly=True) + self.diagonal_offset)

    def set_diagonal(self, vec):
        """Give the operator the diagonal ``vec`` (through N's: the exact terms keep theirs)."""
        if self.diagonal_offset is None:
            self.near.setDiagonal(vec)
            return
        rest = vec.duplicate()
        rest.setArray(vec.getArray(readonly=True) - self.diagonal_offset)
        self.near.setDiagonal(rest)
        rest.destroy()

    def mult(self, x, y):
        self.mat.mult(x, y)

    def multTranspose(self, x, y):
        self.mat.multTranspose(x, y)

    def scale(self, s):
        if self.kind == "hmatrix":
            self.mat.near.scale(s)
            self.mat.u.scale(s)
        else:
            self.mat.scale(s)
        if self.diagonal_offset is not None:
            self.diagonal_offset = self.diagonal_offset * s

    def scale_columns(self, weights):
        """Right-multiply by diag(weights) (a Vec in the column layout)."""
        if self.kind == "hmatrix":
            self.mat.near.diagonalScale(None, weights)
            self.mat.vt.diagonalScale(None, weights)
        else:
            self.mat.diagonalScale(None, weights)
        if self.diagonal_offset is not None:
            self.diagonal_offset = self.diagonal_offset * weights.getArray(readonly=True)

    def destroy(self):
        self.mat.destroy()


def dense_bytes(layout):
    return layout.n_local * layout.n * ENTRY_BYTES


def build_dense(kernel, layout, comm):
    """Every entry of this rank's rows (interior rows and columns; the rest stays zero)."""
    mat = PETSc.Mat().createDense(((layout.n_local, layout.n), (layout.n_local, layout.n)), comm=comm)
    mat.setUp()
    before = kernel.evaluations
    try:
        collective.run(comm, _fill_dense, kernel, layout, mat.getDenseArray())
    except collective.GreenPCError:
        mat.destroy()
        raise
    mat.assemble()
    entries = layout.n_local * layout.n
    return ApproximateInverse("dense", mat, entries, entries * ENTRY_BYTES,
                              kernel.evaluations - before)


def _fill_dense(kernel, layout, array):
    array[...] = 0.0
    rows, cols = layout.local_interior_ids, layout.interior_ids
    chunk = max(1, DENSE_ROW_CHUNK_PAIRS // max(len(cols), 1))
    for start in range(0, len(rows), chunk):
        block_rows = rows[start:start + chunk]
        array[np.ix_(block_rows, cols)] = kernel.block(layout.local[block_rows], layout.points[cols])


def sparse_pattern(layout, radius):
    """(local row, global column) pairs of interior points within ``radius``, ordered by row, then
    column. One dual-tree query of the local rows' tree against the columns' returns the pairs as
    arrays, which scipy's COO-to-CSR counting sort orders: conv2d at N = 256, radius 3 h (1.77M pairs),
    0.18 s against 0.35 s for a ball query per row, which returns Python lists."""
    interior = layout.interior_ids
    rows = layout.local_interior_ids
    found = cKDTree(layout.local[rows]).sparse_distance_matrix(
        cKDTree(layout.points[interior]), radius, output_type="ndarray")
    # (sorting the pairs' keys instead took twice as long)
    csr = sp.csr_matrix((np.ones(len(found), dtype=np.int8), (found["i"], found["j"])),
                        shape=(len(rows), len(interior)))
    csr.sort_indices()
    return np.repeat(rows, np.diff(csr.indptr)), interior[csr.indices]


def with_diagonal(layout, rows, cols, values):
    """Triplets plus an explicit (zero) diagonal entry in every local row: the fit sets the diagonal."""
    local = np.arange(layout.n_local)
    return (np.concatenate([rows, local]), np.concatenate([cols, local + layout.start]),
            np.concatenate([values, np.zeros(layout.n_local)]))


class KnownValues:
    """Kernel values G(x_r, x_c) a build evaluated at this rank's rows r (global index) and columns c,
    found again by key: the fit needs G at the Pmat's stencil pairs, which the sparse pattern holds
    (conv2d at N = 128: the fit's 65k evaluations were 19% of the sparse set-up)."""

    def __init__(self, rows, cols, values, n):
        keys = rows.astype(np.int64) * n + cols
        order = np.argsort(keys, kind="stable")    # (timsort: the rows come in order already)
        self.keys, self.values, self.n = keys[order], values[order], n

    def lookup(self, rows, cols):
        """(values, found) at the pairs (rows_i, cols_i), global indices; values are 0 where not found."""
        keys = rows.astype(np.int64) * self.n + cols
        at = np.searchsorted(self.keys, keys)
        found = at < len(self.keys)
        found[found] = self.keys[at[found]] == keys[found]
        values = np.zeros(len(keys))
        values[found] = self.values[at[found]]
        return values, found


def sparse_bytes(pattern):
    """Bytes of a sparse matrix with the (rows, cols) ``pattern`` of ``sparse_pattern``."""
    return len(pattern[0]) * (ENTRY_BYTES + INDEX_BYTES)


def keep_largest(rows, values, per_row):
    """Mask of the ``per_row`` largest |values| of each row (all of them when per_row is 0)."""
    if per_row <= 0:
        return np.ones(len(rows), dtype=bool)
    order = np.lexsort((-np.abs(values), rows))
    sorted_rows = rows[order]
    first = np.searchsorted(sorted_rows, sorted_rows, side="left")
    rank_in_row = np.arange(len(rows)) - first
    keep = np.zeros(len(rows), dtype=bool)
    keep[order[rank_in_row < per_row]] = True
    return keep


def build_sparse(kernel, layout, comm, radius, per_row, pattern=None):
    """Section 4's sparse approximate inverse: per row the p largest entries within the radius.
    ``pattern``: this rank's ``sparse_pattern(layout, radius)`` when the memory check has found it
    already (it is found once per set-up)."""
    before = kernel.evaluations
    rows, cols, values, kept, known = collective.run(comm, _sparse_entries, kernel, layout, radius,
                                                     per_row, pattern)
    mat = aij_from_coo(rows, cols, values, (layout.n_local, layout.n_local), (layout.n, layout.n), comm)
    return ApproximateInverse("sparse", mat, kept, kept * (ENTRY_BYTES + INDEX_BYTES),
                              kernel.evaluations - before,
                              {"radius": radius, "per_row": per_row}, known=known)


def _sparse_entries(kernel, layout, radius, per_row, pattern=None):
    rows, cols = pattern if pattern is not None else sparse_pattern(layout, radius)
    values = kernel(layout.local[rows], layout.points[cols])
    keep = keep_largest(rows, values, per_row)
    known = KnownValues(rows + layout.start, cols, values, layout.n)
    return (*with_diagonal(layout, rows[keep], cols[keep], values[keep]), int(keep.sum()), known)


def compressor_for(opts, dim, oscillatory=False):
    """The compressor -greenpc_hmat_compressor names; auto is chebyshev in 2D for a kernel that does
    not oscillate, aca otherwise.

    In 2D the Chebyshev interpolant at p = 4 with eta 1.5 evaluates 4-6x fewer kernel entries than ACA
    with eta 0.7 at the same iterations (conv2d, react2d, rotlap2d, and helmholtz2d's network part up to
    k2 = 1000, N = 128). A fixed order under-resolves an oscillating kernel (the closed-form helmholtz2d:
    200 iterations against ACA's 7 at k2 = 500, N = 64), in 1D ranks are small and ACA evaluates less,
    and 3D (p^6 evaluations a block) is unmeasured."""
    if opts["hmat_compressor"] != "auto":
        return opts["hmat_compressor"]
    return "chebyshev" if dim == 2 and not oscillatory else "aca"


def oscillates(kernel, exact_split):
    """Whether the part of ``kernel`` that the H-matrix compresses oscillates (a split model's network
    part does not: its oscillation is in the exact term)."""
    with compressed(kernel, exact_split):
        return bool(kernel.innermost().oscillatory)


def hmatrix_settings(layout, opts, compressor, exact_rank=0):
    """Leaf size, eta and rank settings for ``compressor`` (``compressor_for``) from the options, with
    the paper's rules as defaults; ACA's tolerance is -greenpc_hmat_split_tol when the kernel's split-off
    part is stored exactly (as a term of rank ``exact_rank`` > 0, which the memory plan counts)."""
    from .. import hmatrix

    n_side = round(layout.n ** (1.0 / layout.dim))
    leaf = opts["hmat_leaf_size"] or hmatrix.paper_leaf_size(layout.dim, n_side)
    eta = opts["hmat_eta"] or (1.0 if layout.dim == 1 else 1.5 if compressor == "chebyshev" else 0.7)
    settings = {"leaf_size": leaf, "eta": eta, "compressor": compressor,
                "max_rank": opts["hmat_max_rank"], "seed": opts["seed"],
                "rank_samples": opts["hmat_rank_samples"], "exact_rank": int(exact_rank)}
    if opts["hmat_rank"]:
        settings["rank"] = opts["hmat_rank"]
    elif compressor == "chebyshev":
        # the interpolant's rank (its memory is each cluster's basis once and a core per block)
        settings["rank"] = min(opts["hmat_cheb_order"] ** layout.dim, opts["hmat_max_rank"])
    elif opts["hmat_rank_rule"] or compressor != "aca":
        # Nystrom needs a target rank: the paper's rule unless one is given
        settings["rank_rule"] = hmatrix.RankRule(hmatrix.paper_base_rank(n_side), leaf)
    if compressor == "aca" or not ("rank_rule" in settings or "rank" in settings):
        settings["tol"] = opts["hmat_split_tol"] if exact_rank else opts["hmat_tol"]
    if compressor == "chebyshev":
        settings["order"] = opts["hmat_cheb_order"]
    return settings


def exact_part(kernel, enabled):
    """The kernel whose split-off part the H-matrix stores exactly, or None.

    A Helmholtz model's resonant modes S = sum_m c_m phi_m(x) phi_m(y) are of rank r on every block,
    and near a resonance (k2 close to an eigenvalue) they dominate it: ACA to a relative tolerance then
    keeps S and loses the rest (200 iterations against 13 dense, helmholtz2d-gauss, k2 = 400, N = 64).
    With -greenpc_hmat_exact_split the H-matrix compresses the network's part R = G - S alone and
    adds the factors of S as one exact rank-r term."""
    inner = kernel.innermost()
    if enabled and getattr(inner, "low_rank_split", False):
        return inner
    return None


def exact_rank(kernel, enabled, dim):
    """The rank of the term ``exact_part`` stores (0 without one): the modes that k2's window keeps."""
    inner = exact_part(kernel, enabled)
    if inner is None:
        return 0
    centre = np.full((1, dim), 0.5)      # one pair: the rank does not depend on the points
    return inner.split_factors(centre, centre)[0].shape[1]


def compressed(kernel, enabled):
    """The context in which the H-matrix evaluates the kernel (without an exact part)."""
    inner = exact_part(kernel, enabled)
    return inner.split_apart() if inner is not None else contextlib.nullcontext()


def hmatrix_plan(layout, settings, kernel, limit):
    """This rank's H-matrix plan under ``limit`` bytes (``hmatrix.plan_within``: ACA's ranks sampled
    when its bound would pass it)."""
    from .. import hmatrix

    rows, cols = layout.local[layout.local_interior_ids], layout.points[layout.interior_ids]
    with compressed(kernel, settings["exact_split"]):
        return hmatrix.plan_within(kernel, rows, cols, limit, row_offset=layout.start,
                                   **settings["hmatrix"])


def build_hmatrix(kernel, layout, comm, settings, max_bytes):
    """The H-matrix of the interior rows and columns, as N + U Vt in PETSc's numbering."""
    from ..hmatrix.petsc import assemble

    before = kernel.evaluations
    hm = collective.run(comm, _hmatrix_local, kernel, layout, settings, max_bytes)
    op = assemble(hm, comm, layout.n_local, layout.n, row_ids=layout.local_interior_ids,
                  col_ids=layout.interior_ids, n_local_rows=layout.n_local, diagonal=True)
    storage = hm.storage
    info = {"near_blocks": storage.near_blocks, "far_blocks": storage.far_blocks,
            "max_rank": storage.max_rank, "mean_rank": storage.mean_rank,
            "exact_rank": storage.exact_rank,
            "leaf_size": settings["hmatrix"]["leaf_size"], "eta": settings["hmatrix"]["eta"],
            "compressor": settings["hmatrix"]["compressor"], "order": settings["hmatrix"].get("order"),
            "hmatrix": hm,
            "memory_estimate": hm.plan.estimate_bytes(), "estimate_basis": hm.plan.describe_estimate()}
    return ApproximateInverse("hmatrix", op, storage.entries, storage.entries * ENTRY_BYTES,
                              kernel.evaluations - before, info, exact_diagonal(hm, layout))


def exact_diagonal(hm, layout):
    """The diagonal of the H-matrix's exact terms on this rank's rows (zero on boundary rows), or None.
    Its rows are this rank's interior points, its columns all interior points."""
    if not hm.exact:
        return None
    rows = layout.local_interior_ids
    own = np.searchsorted(layout.interior_ids, rows + layout.start)     # each row's own column
    offset = np.zeros(layout.n_local)
    for block in hm.exact:
        offset[rows] += np.einsum("ik,ik->i", block.u, block.v[own])
    return offset


def _hmatrix_local(kernel, layout, settings, max_bytes):
    from .. import hmatrix

    rows, cols = layout.local_interior_ids, layout.interior_ids
    with compressed(kernel, settings["exact_split"]):
        hm = hmatrix.build(kernel, layout.local[rows], layout.points[cols], row_offset=layout.start,
                           max_bytes=max_bytes, **settings["hmatrix"])
    inner = exact_part(kernel, settings["exact_split"])
    if inner is not None:
        hm.add_exact(*inner.split_factors(layout.local[rows], layout.points[cols]))
    return hm


def decay_ratio(kernel, layout, radius, rows, seed):
    """eq. 42 on sampled rows: max over |x_i - x_j| > r of |G(x_i, x_j)|, over the row's largest |G|."""
    rng = np.random.default_rng(seed + layout.start)
    local = layout.local_interior_ids
    if len(local) == 0:
        return 0.0
    pick = rng.choice(local, size=min(rows, len(local)), replace=False)
    cols = layout.interior_ids
    values = np.abs(kernel.block(layout.local[pick], layout.points[cols]))
    distance = np.linalg.norm(layout.local[pick][:, None, :] - layout.points[cols][None], axis=-1)
    far = np.where(distance > radius, values, 0.0).max(axis=1)
    return float(np.max(far / np.maximum(values.max(axis=1), 1e-300)))
