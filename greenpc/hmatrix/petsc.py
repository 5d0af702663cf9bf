"""The H-matrix as three distributed PETSc matrices: y = N x + U (Vt x).

N holds the dense near blocks, U one column and Vt one row per rank-one term of the far blocks (and of
the exact terms over the whole matrix, ``HMatrix.add_exact``); all three are MatMPIAIJ, so an apply is
three SpMVs in C with PETSc's own scatters, and the memory is exactly that of the H-matrix (plus AIJ's
column indices).
"""
import numpy as np
from petsc4py import PETSc

from ..petsc_mats import aij_from_blocks, owned_range


class PetscHMatrix:
    """The assembled operator: ``mult`` and ``multTranspose`` with one preallocated work vector.

    Attributes
    ----------
    near : PETSc.Mat
        N, rows x columns in the vector layouts.
    u : PETSc.Mat
        U, rows x terms (this rank's columns are its own rank-one terms).
    vt : PETSc.Mat
        Vt, terms x columns.
    """

    def __init__(self, near, u, vt):
        self.near, self.u, self.vt = near, u, vt
        # Vt x and U^T x both live in the layout of the terms
        self.work = vt.createVecLeft()

    def mult(self, x, y):
        """y = N x + U (Vt x)."""
        self.vt.mult(x, self.work)
        self.near.mult(x, y)
        self.u.multAdd(self.work, y, y)

    def multTranspose(self, x, y):
        """y = N^T x + Vt^T (U^T x)."""
        self.u.multTranspose(x, self.work)
        self.near.multTranspose(x, y)
        self.vt.multTransposeAdd(self.work, y, y)

    def getInfo(self, local=False):
        """PETSc's Mat.getInfo of each matrix ({"near", "u", "vt"}) and their totals ("total").

        Figures are summed over ranks unless ``local``. PETSc no longer reports memory in MatInfo, so
        "memory" is the AIJ storage in bytes: a value and a column index per nonzero, and the row
        pointers of the diagonal and off-diagonal parts.
        """
        kind = PETSc.Mat.InfoType.LOCAL if local else PETSc.Mat.InfoType.GLOBAL_SUM
        value_bytes, index_bytes = (np.dtype(t).itemsize for t in (PETSc.ScalarType, PETSc.IntType))
        parts = {}
        for name, mat in (("near", self.near), ("u", self.u), ("vt", self.vt)):
            info = mat.getInfo(kind)
            rows = mat.getLocalSize()[0] + 1 if local else mat.getSize()[0] + mat.getComm().getSize()
            info["memory"] = info["nz_used"] * (value_bytes + index_bytes) + 2 * rows * index_bytes
            parts[name] = info
        totals = {key: sum(part[key] for part in parts.values()) for key in ("nz_used", "memory")}
        return parts | {"total": totals}

    def memory(self, local=False):
        """Bytes of the three matrices' AIJ storage (summed over ranks unless ``local``)."""
        return self.getInfo(local)["total"]["memory"]

    def destroy(self):
        for obj in (self.near, self.u, self.vt, self.work):
            obj.destroy()


def assemble(hmatrix, comm, n_local_cols, n_global, *, row_ids=None, col_ids=None, n_local_rows=None,
             diagonal=False):
    """N, U and Vt of ``hmatrix`` (this rank's rows) as MatMPIAIJ on ``comm``, block by block.

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
    ranks = np.array([block.rank for block in blocks], dtype=np.int64)
    terms = int(ranks.sum())
    mpi = comm.tompi4py()
    m_global, terms_global = mpi.allreduce(m), mpi.allreduce(terms)
    # U's columns are this rank's terms, numbered globally after those of lower ranks
    terms_start, _ = owned_range(comm, terms)
    first = np.concatenate([[0], np.cumsum(ranks)[:-1]])
    near = aij_from_blocks([(row_ids[b.rows], col_ids[b.cols], b.values) for b in hmatrix.near],
                           (m, n_local_cols), (m_global, n_global), comm, diagonal=diagonal)
    u = aij_from_blocks([(row_ids[b.rows], terms_start + k + np.arange(r), b.u)
                         for b, k, r in zip(blocks, first, ranks)],
                        (m, terms), (m_global, terms_global), comm)
    vt = aij_from_blocks([(k + np.arange(r), col_ids[b.cols], b.v.T)
                          for b, k, r in zip(blocks, first, ranks)],
                         (terms, n_local_cols), (terms_global, n_global), comm)
    return PetscHMatrix(near, u, vt)
