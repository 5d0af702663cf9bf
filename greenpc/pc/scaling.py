"""Fit the preconditioner to the user's matrix: one scale, boundary rows, and the diagonal repair.

M = s K + D, where K is the kernel matrix (zero on boundary rows and columns), s one scalar fitted by
least squares so that s A M v ~ v on random vectors (the PC then does not depend on how the user scaled
the matrix), and D diagonal:

- on boundary rows (Dirichlet rows kept in the system, where the kernel vanishes) D = 1 / A_jj;
- with the diagonal fit, each interior M_jj is chosen so that (A M)_jj = 1 given the kernel's other
  entries of column j: M_jj = (1 - s sum_{k != j} A_jk K_kj) / A_jj. The operator amplifies errors near
  the diagonal most (../shared/DESIGN.md), and this local fit repairs them for a few flops per row;
  s is fitted jointly (the fit is linear in s).
"""
from dataclasses import dataclass

import numpy as np
from petsc4py import PETSc


@dataclass
class Fit:
    scale: float
    diagonal_fit: bool
    quality: float  # ||v - A M v|| / ||v|| on fresh random vectors
    evaluations: int


def local_rows(pmat):
    """This rank's rows of the Pmat as CSR (row pointers, global columns, values), or None."""
    try:
        indptr, indices, values = pmat.getValuesCSR()
    except PETSc.Error:
        return None
    return np.asarray(indptr), np.asarray(indices), np.asarray(values)


def off_diagonal_pairs(kernel, layout, rows_csr, known=None):
    """Kernel values K_kj = G(x_k, x_j) w_j at the Pmat's off-diagonal interior entries (k, j).

    Depends only on the pattern and the geometry, so a re-fit against new matrix values reuses it.
    ``known`` (``formats.KnownValues``): values the build evaluated already, looked up instead of
    evaluated again (those at rows k of other ranks are evaluated).
    """
    indptr, indices, _ = rows_csr
    row = np.repeat(np.arange(layout.n_local), np.diff(indptr))
    j_global = row + layout.start
    keep = (indices != j_global) & layout.interior[indices] & layout.local_interior[row]
    k, j = indices[keep], j_global[keep]
    if known is None:
        g = kernel(layout.points[k], layout.points[j])
    else:
        g, found = known.lookup(k, j)
        missing = ~found
        if missing.any():
            g[missing] = kernel(layout.points[k[missing]], layout.points[j[missing]])
    g = g * layout.weights[j]
    return {"indptr": indptr.copy(), "indices": indices.copy(), "keep": keep, "row": row[keep], "g": g}


def off_diagonal_products(pairs, layout, rows_csr):
    """e_j = sum_{k != j, k interior} A_jk K_kj for this rank's interior rows j."""
    values = rows_csr[2]
    return np.bincount(pairs["row"], weights=values[pairs["keep"]] * pairs["g"],
                       minlength=layout.n_local)


def same_pattern(pairs, rows_csr):
    return (pairs is not None and np.array_equal(pairs["indptr"], rows_csr[0])
            and np.array_equal(pairs["indices"], rows_csr[1]))


def random_vectors(amat, layout, count, seed):
    """Vectors uniform in [-0.5, 0.5] on interior rows, zero on boundary rows, rank-independent."""
    out = []
    for i in range(count):
        values = np.random.default_rng(seed + 7 * i).uniform(-0.5, 0.5, layout.n)
        local = values[layout.start:layout.end] * layout.local_interior
        v = amat.createVecRight()
        v.setArray(local)
        out.append(v)
    return out


def fit(op, amat, pmat, kernel, layout, opts, pairs=None):
    """Scale op (the kernel matrix K) into M in place; returns the Fit and the kernel pairs used."""
    diag = pmat.createVecLeft()
    pmat.getDiagonal(diag)
    a_diag = diag.getArray(readonly=True).copy()
    interior = layout.local_interior
    if np.any(a_diag[~interior] == 0):
        raise ValueError("a boundary row of the Pmat has a zero diagonal: cannot invert it")
    use_fit = opts["diagonal_fit"]
    before = kernel.evaluations
    rows = local_rows(pmat) if use_fit else None
    use_fit = rows is not None
    if use_fit:
        if not same_pattern(pairs, rows):
            pairs = off_diagonal_pairs(kernel, layout, rows)
        e = off_diagonal_products(pairs, layout, rows)
    if use_fit and np.any(a_diag[interior] == 0):
        raise ValueError("the Pmat has a zero diagonal entry on an interior row: the diagonal fit "
                         "needs A_jj != 0 (use -greenpc_diagonal_fit 0)")
    k_diag = op.near.createVecLeft()
    op.get_diagonal(k_diag)
    kd = k_diag.getArray(readonly=True).copy()
    safe_a = np.where(a_diag == 0, 1.0, a_diag)

    def apply_fit_operator(v, out):
        """out = K v with the diagonal fit's substitution (q of the module docstring)."""
        op.mult(v, out)
        if use_fit:
            x = v.getArray(readonly=True)
            out.setArray(out.getArray(readonly=True) - (kd + e / safe_a) * x * interior)

    if opts["scale"] > 0:
        s = opts["scale"]
    else:
        numerator = denominator = 0.0
        q, p, r = amat.createVecLeft(), amat.createVecLeft(), amat.createVecLeft()
        for v in random_vectors(amat, layout, opts["scale_vectors"], opts["seed"]):
            apply_fit_operator(v, q)
            amat.mult(q, p)
            target = v.copy()
            if use_fit:
                w = v.copy()
                w.setArray(v.getArray(readonly=True) * interior / safe_a)
                amat.mult(w, r)
                target.axpy(-1.0, r)
            numerator += target.dot(p)
            denominator += p.dot(p)
        s = numerator / denominator if denominator > 0 else 1.0
    op.scale(s)
    final = np.where(interior, s * kd, 1.0 / safe_a)
    if use_fit:
        final = np.where(interior, (1.0 - s * e) / safe_a, final)
    k_diag.setArray(final)
    op.set_diagonal(k_diag)
    quality = preconditioned_residual(op, amat, layout, opts)
    return Fit(float(s), use_fit, quality, kernel.evaluations - before), pairs


def preconditioned_residual(op, amat, layout, opts):
    """||v - A M v|| / ||v|| on fresh random vectors: the quality figure of DESIGN.md."""
    worst = 0.0
    mv, amv = amat.createVecRight(), amat.createVecLeft()
    for v in random_vectors(amat, layout, opts["scale_vectors"], opts["seed"] + 1000):
        op.mult(v, mv)
        amat.mult(mv, amv)
        amv.aypx(-1.0, v)
        worst = max(worst, amv.norm() / max(v.norm(), 1e-300))
    return worst


def unscale(op, fit, k_diagonal):
    """Undo ``fit`` (for a re-fit against new matrix values): back to K with its own diagonal."""
    op.scale(1.0 / fit.scale)
    op.set_diagonal(k_diagonal)
