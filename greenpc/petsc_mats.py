"""Distributed PETSc matrices from locally owned COO triplets (rows local to this rank, columns global)."""
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
    local.sum_duplicates()
    local.sort_indices()
    mat = PETSc.Mat().createAIJ(size=(tuple(zip(local_shape, global_shape))), comm=comm)
    mat.setPreallocationCSR((local.indptr.astype(PETSc.IntType), local.indices.astype(PETSc.IntType),
                             local.data))
    mat.assemble()
    return mat


def owned_range(comm, n_local):
    """(start, end) of this rank's contiguous block of a layout with n_local entries here."""
    mpi = comm.tompi4py()
    start = mpi.exscan(n_local) or 0
    return start, start + n_local
