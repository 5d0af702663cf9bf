"""Distributed PETSc matrices from locally owned entries (rows local to this rank, columns global):
COO triplets, or dense blocks written straight into one CSR (an H-matrix's near field and factors)."""
import numpy as np
import scipy.sparse as sp
from petsc4py import PETSc


def aij_from_coo(rows, cols, values, local_shape, global_shape, comm):
    """A MatMPIAIJ whose local rows are ``rows`` (0-based on this rank) and columns global indices.

    ``local_shape = (m, n)`` are this rank's row and column layout sizes; duplicates are summed.
    Preallocation and values come from one CSR, so assembly is exact and copy-free in PETSc.
    """
    m, _ = local_shape
    local = sp.csr_matrix((np.asarray(values, dtype=PETSc.RealType),
                           (np.asarray(rows), np.asarray(cols))), shape=(m, global_shape[1]))
    return _aij_from_csr(local, local_shape, global_shape, comm)


def aij_from_blocks(blocks, local_shape, global_shape, comm, diagonal=False):
    """A MatMPIAIJ from dense blocks, written into one CSR without COO triplets.

    ``blocks`` is a sequence of (rows, cols, values): local row indices (distinct within a block),
    global column indices and the (len(rows), len(cols)) values. Entries given twice are summed. With
    ``diagonal``, every local row also holds its diagonal entry (zero unless a block gives it), so it
    can be set later without a new allocation. The memory is the CSR (a value and an index per entry)
    and PETSc's copy of it: a third of what triplets and their sorted copy took.
    """
    m = local_shape[0]
    counts = np.zeros(m, dtype=np.int64)
    for rows, cols, _ in blocks:
        counts[rows] += len(cols)
    counts += bool(diagonal)
    indptr = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.empty(indptr[-1], dtype=PETSc.IntType)  # column indices: they fit PETSc's integers
    data = np.empty(indptr[-1], dtype=PETSc.RealType)
    fill = indptr[:-1].copy()
    for rows, cols, values in blocks:
        at = fill[rows][:, None] + np.arange(len(cols))
        indices[at] = cols
        data[at] = values
        fill[rows] += len(cols)
    if diagonal:
        start, _ = owned_range(comm, m)
        indices[fill] = start + np.arange(m)
        data[fill] = 0.0
    local = sp.csr_matrix((data, indices, indptr), shape=(m, global_shape[1]), copy=False)
    return _aij_from_csr(local, local_shape, global_shape, comm)


def _aij_from_csr(local, local_shape, global_shape, comm):
    """Preallocation and values from one scipy CSR of the local rows: exact and copy-free in PETSc."""
    local.sum_duplicates()
    local.sort_indices()
    mat = PETSc.Mat().createAIJ(size=(tuple(zip(local_shape, global_shape))), comm=comm)
    mat.setPreallocationCSR((local.indptr.astype(PETSc.IntType, copy=False),
                             local.indices.astype(PETSc.IntType, copy=False), local.data))
    mat.assemble()
    return mat


def owned_range(comm, n_local):
    """(start, end) of this rank's contiguous block of a layout with n_local entries here."""
    mpi = comm.tompi4py()
    start = mpi.exscan(n_local) or 0
    return start, start + n_local
