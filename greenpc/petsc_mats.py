"""Distributed PETSc matrices from locally owned entries (rows local to this rank, columns global):
COO triplets, or dense blocks written straight into CSR (an H-matrix's near field and factors).

PETSc takes the CSR arrays as they are (``MatCreateSeqAIJWithArrays`` on one rank,
``MatCreateMPIAIJWithSplitArrays`` on several, the columns this rank owns apart from the others), so the
matrix costs its CSR and no copy: an H-matrix's assembly peaked at its blocks plus twice their CSR.
"""
import numpy as np
import scipy.sparse as sp
from petsc4py import PETSc


def aij_from_coo(rows, cols, values, local_shape, global_shape, comm):
    """A MatMPIAIJ whose local rows are ``rows`` (0-based on this rank) and columns global indices.

    ``local_shape = (m, n)`` are this rank's row and column layout sizes; duplicates are summed.
    """
    m, _ = local_shape
    rows, cols = np.asarray(rows), np.asarray(cols)
    values = np.asarray(values, dtype=PETSc.RealType)
    start, end = owned_range(comm, local_shape[1])
    parts = []
    for select, offset, width in _column_parts(comm, start, end, global_shape[1]):
        keep = select(cols)
        parts.append(sp.csr_matrix((values[keep], (rows[keep], cols[keep] - offset)),
                                   shape=(m, width)))
    return _aij_from_parts(parts, local_shape, global_shape, comm)


def aij_from_blocks(blocks, local_shape, global_shape, comm, diagonal=False):
    """A MatMPIAIJ from dense blocks, written into CSR without COO triplets.

    ``blocks`` is a sequence of (rows, cols, values): local row indices (distinct within a block),
    global column indices and the (len(rows), len(cols)) values. Entries given twice are summed. With
    ``diagonal``, every local row also holds its diagonal entry (zero unless a block gives it), so it
    can be set later without a new allocation. The memory is the CSR (a value and an index per entry),
    which PETSc keeps as its own.
    """
    m = local_shape[0]
    start, end = owned_range(comm, local_shape[1])
    row_start, _ = owned_range(comm, m)
    if diagonal and row_start != start:
        raise ValueError(f"a diagonal entry per row needs the same row and column layout, got rows from "
                         f"{row_start} and columns from {start} on this rank")
    parts = []
    for select, offset, width in _column_parts(comm, start, end, global_shape[1]):
        chosen = []
        for rows, cols, values in blocks:
            keep = select(cols)
            picked = cols[keep]
            if len(picked):
                chosen.append((rows, picked - offset, values[:, keep]))
        # each row's diagonal entry lies in its owned columns: the first part
        own_diagonal = row_start + np.arange(m) - offset if diagonal and not parts else None
        parts.append(_csr_from_blocks(chosen, m, width, own_diagonal))
    return _aij_from_parts(parts, local_shape, global_shape, comm)


def _column_parts(comm, start, end, n_global):
    """(select, offset, width) of each CSR that PETSc takes, ``select(cols)`` picking its columns: on
    one rank every column; on several the owned columns [start, end) in local numbers (minus offset),
    then the others in global numbers."""
    if comm.getSize() == 1:
        return [(lambda cols: slice(None), 0, n_global)]
    owned = lambda cols: (cols >= start) & (cols < end)        # noqa: E731
    return [(owned, start, end - start), (lambda cols: ~owned(cols), 0, n_global)]


def _csr_from_blocks(blocks, m, width, diagonal_cols=None):
    """One scipy CSR (m x width) from dense blocks (``_aij_from_parts`` sorts each row and sums
    duplicates); with ``diagonal_cols`` every row i also holds column diagonal_cols[i] (zero unless given)."""
    counts = np.zeros(m, dtype=np.int64)
    for rows, cols, _ in blocks:
        counts[rows] += len(cols)
    if diagonal_cols is not None:
        counts += 1
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
    if diagonal_cols is not None:
        indices[fill] = diagonal_cols
        data[fill] = 0.0
    return sp.csr_matrix((data, indices, indptr), shape=(m, width), copy=False)


def _aij_from_parts(parts, local_shape, global_shape, comm):
    """The matrix on the CSR arrays of ``parts``: [all columns] on one rank, [owned columns in local
    numbers, the others in global numbers] on several. PETSc keeps the arrays (no copy)."""
    arrays = []
    for part in parts:
        part.sum_duplicates()           # sorted columns in each row, as PETSc needs them
        arrays.append((part.indptr.astype(PETSc.IntType, copy=False),
                       part.indices.astype(PETSc.IntType, copy=False),
                       np.ascontiguousarray(part.data, dtype=PETSc.ScalarType)))
    csr = arrays[0] if len(arrays) == 1 else tuple(arrays)
    mat = PETSc.Mat().createAIJWithArrays(tuple(zip(local_shape, global_shape)), csr, comm=comm)
    mat.assemble()
    return mat


def owned_range(comm, n_local):
    """(start, end) of this rank's contiguous block of a layout with n_local entries here."""
    mpi = comm.tompi4py()
    start = mpi.exscan(n_local) or 0
    return start, start + n_local
