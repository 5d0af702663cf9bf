"""The H-matrix as distributed PETSc matrices: y = N x + U (Vt x), or y = N x + U (C (Vt x)).

N holds the dense near blocks, U one column and Vt one row per rank-one term of the far blocks (and of
the exact terms over the whole matrix, ``HMatrix.add_exact``). Far blocks on shared bases (Chebyshev:
K(I, J) ~= L_I core L_J^T) store each cluster's basis once, in U (row clusters) or Vt (column clusters),
and their cores in C, which couples them (a block of its own factors couples its terms by the identity
there). All are MatMPIAIJ, so an apply is three or four SpMVs in C with PETSc's own scatters, and the
memory is exactly that of the H-matrix (plus AIJ's column indices).
"""
import numpy as np
from petsc4py import PETSc

from ..petsc_mats import aij_from_blocks, owned_range


class PetscHMatrix:
    """The assembled operator: ``mult`` and ``multTranspose`` with preallocated work vectors.

    Attributes
    ----------
    near : PETSc.Mat
        N, rows x columns in the vector layouts.
    u : PETSc.Mat
        U, rows x row terms (this rank's columns are its own terms).
    vt : PETSc.Mat
        Vt, column terms x columns.
    c : PETSc.Mat or None
        C, row terms x column terms, when far blocks share bases (None: U (Vt x)).
    """

    def __init__(self, near, u, vt, c=None):
        self.near, self.u, self.vt, self.c = near, u, vt, c
        # Vt x lives in the layout of the column terms, C Vt x and U^T x in that of the row terms
        self.work = vt.createVecLeft()
        self.row_work = c.createVecLeft() if c is not None else self.work

    def mult(self, x, y):
        """y = N x + U (C (Vt x))."""
        self.vt.mult(x, self.work)
        if self.c is not None:
            self.c.mult(self.work, self.row_work)
        self.near.mult(x, y)
        self.u.multAdd(self.row_work, y, y)

    def multTranspose(self, x, y):
        """y = N^T x + Vt^T (C^T (U^T x))."""
        self.u.multTranspose(x, self.row_work)
        if self.c is not None:
            self.c.multTranspose(self.row_work, self.work)
        self.near.multTranspose(x, y)
        self.vt.multTransposeAdd(self.work, y, y)

    @property
    def mats(self):
        """(name, Mat) of each matrix the operator holds."""
        named = [("near", self.near), ("u", self.u), ("vt", self.vt)]
        return named + ([("c", self.c)] if self.c is not None else [])

    def getInfo(self, local=False):
        """PETSc's Mat.getInfo of each matrix ({"near", "u", "vt"} and "c" if any) and their totals
        ("total").

        Figures are summed over ranks unless ``local``. PETSc no longer reports memory in MatInfo, so
        "memory" is the AIJ storage in bytes: a value and a column index per nonzero, and the row
        pointers of the diagonal and off-diagonal parts.
        """
        kind = PETSc.Mat.InfoType.LOCAL if local else PETSc.Mat.InfoType.GLOBAL_SUM
        value_bytes, index_bytes = (np.dtype(t).itemsize for t in (PETSc.ScalarType, PETSc.IntType))
        parts = {}
        for name, mat in self.mats:
            info = mat.getInfo(kind)
            rows = mat.getLocalSize()[0] + 1 if local else mat.getSize()[0] + mat.getComm().getSize()
            info["memory"] = info["nz_used"] * (value_bytes + index_bytes) + 2 * rows * index_bytes
            parts[name] = info
        totals = {key: sum(part[key] for part in parts.values()) for key in ("nz_used", "memory")}
        return parts | {"total": totals}

    def memory(self, local=False):
        """Bytes of the matrices' AIJ storage (summed over ranks unless ``local``)."""
        return self.getInfo(local)["total"]["memory"]

    def destroy(self):
        for _, mat in self.mats:
            mat.destroy()
        self.work.destroy()
        if self.c is not None:
            self.row_work.destroy()


def assemble(hmatrix, comm, n_local_cols, n_global, *, row_ids=None, col_ids=None, n_local_rows=None,
             diagonal=False):
    """N, U, Vt (and C, for blocks on shared bases) of ``hmatrix`` (this rank's rows) as MatMPIAIJ on
    ``comm``, block by block.

    Parameters
    ----------
    hmatrix : HMatrix
        Built on this rank's row points against all column points.
    comm : PETSc.Comm
    n_local_cols : int
        This rank's part of the column (vector) layout.
    n_global : int
        Global number of columns.
    row_ids, col_ids : int arrays, optional
        The local row and global column of each of the H-matrix's rows and columns (default: the
        same numbers), e.g. when it holds only the interior points of a grid.
    n_local_rows : int, optional
        This rank's rows of N and U (default: the H-matrix's rows).
    diagonal : bool
        N holds every row's diagonal entry (zero where no near block gives it).

    Returns
    -------
    PetscHMatrix
    """
    m, n = hmatrix.shape
    if col_ids is None and n != n_global:
        raise ValueError(f"the H-matrix has {n} columns but the vector layout has {n_global}")
    row_ids = np.arange(m) if row_ids is None else np.asarray(row_ids)
    col_ids = np.arange(n) if col_ids is None else np.asarray(col_ids)
    m = m if n_local_rows is None else n_local_rows
    blocks = hmatrix.low_rank               # the far blocks, then the exact terms
    mpi = comm.tompi4py()
    m_global = mpi.allreduce(m)
    near = aij_from_blocks([(row_ids[b.rows], col_ids[b.cols], b.values) for b in hmatrix.near],
                           (m, n_local_cols), (m_global, n_global), comm, diagonal=diagonal)
    # each side's terms are this rank's, numbered globally after those of lower ranks
    row_first, row_stored, row_terms = _terms(blocks, "u")
    col_first, col_stored, col_terms = _terms(blocks, "v")
    row_global, col_global = mpi.allreduce(row_terms), mpi.allreduce(col_terms)
    row_start, _ = owned_range(comm, row_terms)
    col_start, _ = owned_range(comm, col_terms)
    u = aij_from_blocks([(row_ids[blocks[i].rows], row_start + k + np.arange(blocks[i].u.shape[1]),
                          blocks[i].u) for i, k in row_stored],
                        (m, row_terms), (m_global, row_global), comm)
    vt = aij_from_blocks([(k + np.arange(blocks[i].v.shape[1]), col_ids[blocks[i].cols], blocks[i].v.T)
                          for i, k in col_stored],
                         (col_terms, n_local_cols), (col_global, n_global), comm)
    c = None
    if hmatrix.coupled:
        coupling = []
        for i, block in enumerate(blocks):
            rows, cols = row_first[i], col_start + col_first[i]
            if block.core is not None:
                coupling.append((rows + np.arange(block.u.shape[1]), cols + np.arange(block.v.shape[1]),
                                 block.core))
            else:   # a block of its own factors couples each of its terms to itself alone
                coupling.extend((np.array([rows + k]), np.array([cols + k]), np.ones((1, 1)))
                                for k in range(block.rank))
        c = aij_from_blocks(coupling, (row_terms, col_terms), (row_global, col_global), comm)
    return PetscHMatrix(near, u, vt, c)


def _terms(blocks, side):
    """(first term of each block, [(block, first term)] of the factors to store, terms) on one side
    (``side``: "u" for U's columns, "v" for Vt's rows): a block's own factor has terms of its own, a
    basis that blocks share (a block with a core) has its terms once. Without shared bases both sides
    number the terms alike, block by block, and C would be the identity."""
    first, stored, seen, total = [], [], {}, 0
    for i, block in enumerate(blocks):
        factor = getattr(block, side)
        if block.core is not None and id(factor) in seen:
            first.append(seen[id(factor)])
            continue
        if block.core is not None:
            seen[id(factor)] = total
        first.append(total)
        stored.append((i, total))
        total += factor.shape[1]
    return first, stored, total
