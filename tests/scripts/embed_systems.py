"""Systems built the way existing PETSc codes build them (their own DM, their own assembly).

Shared by the embedding tests (in-process) and the scripts they run under mpiexec. Nothing here uses
greenpc: the point is that greenpc copes with what such codes hand it.
"""
import numpy as np
from petsc4py import PETSc

FIVE_POINT = ((0, 0, 4.0), (-1, 0, -1.0), (1, 0, -1.0), (0, -1, -1.0), (0, 1, -1.0))


def dmda_poisson(M, mat_type="aij", scale=1.0, boundary=1.0, coordinates=False, dof=1,
                 coupling=0.0, comm=None):
    """(da, A): the 5-point Laplacian on an M x M DMDA spanning [0, 1]^2, boundary points kept.

    Interior rows are the stencil times ``scale`` (1: the h^2-scaled rows of PETSc's tutorials;
    (M - 1)^2: the operator itself); boundary rows are ``boundary`` times the identity. With ``dof``
    2 the two fields each get the Laplacian and are coupled by ``coupling`` times the identity.
    ``coordinates`` sets the DMDA's coordinates (uniform on [0, 1]^2); otherwise it has none.
    """
    da = PETSc.DMDA().create(dim=2, sizes=(M, M), dof=dof, stencil_width=1,
                             comm=comm or PETSc.COMM_WORLD)
    if coordinates:
        da.setUniformCoordinates(0.0, 1.0, 0.0, 1.0)
    da.setMatType(mat_type)
    A = da.createMat()
    row, col = PETSc.Mat.Stencil(), PETSc.Mat.Stencil()
    (xs, xe), (ys, ye) = da.getRanges()
    for j in range(ys, ye):
        for i in range(xs, xe):
            for field in range(dof):
                row.index, row.field = (i, j), field
                if i in (0, M - 1) or j in (0, M - 1):
                    A.setValueStencil(row, row, boundary)
                    continue
                for di, dj, value in FIVE_POINT:
                    col.index, col.field = (i + di, j + dj), field
                    A.setValueStencil(row, col, scale * value)
                if dof > 1 and coupling:
                    col.index, col.field = (i, j), 1 - field
                    A.setValueStencil(row, col, scale * coupling)
    A.assemble()
    return da, A


def dmda_grid_points(da):
    """The owned points of a DMDA spanning [0, 1]^d, in PETSc's order, computed independently."""
    shadow = da.duplicate()
    shadow.setUniformCoordinates(0.0, 1.0, 0.0, 1.0, 0.0, 1.0)
    points = shadow.getCoordinates().getArray(readonly=True).reshape(-1, da.getDim()).copy()
    shadow.destroy()
    return points


def plex_q1(cells_per_side, comm=None):
    """(dm, A): Q1 Laplacian stiffness on a DMPlex quadrilateral box mesh of [0, 1]^2.

    One unknown per vertex (a PetscSection with one dof on each vertex, as a P1/Q1 code sets it up);
    the rows follow the DM's global section; boundary vertices keep identity rows (MatZeroRows).
    """
    dm = PETSc.DMPlex().createBoxMesh((cells_per_side, cells_per_side), lower=(0, 0), upper=(1, 1),
                                      simplex=False, comm=comm or PETSc.COMM_WORLD)
    dm.distribute()
    v_start, v_end = dm.getDepthStratum(0)
    section = PETSc.Section().create(comm=dm.getComm())
    section.setChart(*dm.getChart())
    for v in range(v_start, v_end):
        section.setDof(v, 1)
    section.setUp()
    dm.setLocalSection(section)
    A = dm.createMat()
    xy, rows = plex_vertices(dm)
    c_start, c_end = dm.getHeightStratum(0)
    for c in range(c_start, c_end):
        vertices = [p for p in dm.getTransitiveClosure(c)[0] if v_start <= p < v_end]
        points = np.array([xy[v - v_start] for v in vertices])
        index = np.array([rows[v - v_start] for v in vertices], dtype=PETSc.IntType)
        A.setValues(index, index, q1_stiffness(points).ravel(), addv=PETSc.InsertMode.ADD_VALUES)
    A.assemble()
    owned = np.array([dm.getGlobalSection().getOffset(v) >= 0 for v in range(v_start, v_end)])
    on_boundary = np.any(np.isclose(xy, 0.0) | np.isclose(xy, 1.0), axis=1)
    A.zeroRows(np.asarray(rows[owned & on_boundary], dtype=PETSc.IntType), 1.0)
    return dm, A


def q1_stiffness(points):
    """int grad phi_i . grad phi_j over an axis-aligned rectangle with corners ``points`` (4, 2).

    phi_i = X_i(x) Y_i(y) with hat functions X, Y, so each term is a product of 1D integrals.
    """
    low, high = points.min(axis=0), points.max(axis=0)
    h = high - low
    side = np.isclose(points, high)  # (4, 2): which end of each axis the vertex sits at
    same = side[:, None, :] == side[None, :, :]
    mass = np.where(same, h / 3.0, h / 6.0)
    stiffness = np.where(same, 1.0 / h, -1.0 / h)
    return stiffness[..., 0] * mass[..., 1] + mass[..., 0] * stiffness[..., 1]


def plex_vertices(dm):
    """(xy, rows): coordinates of the local vertices and their global rows (owned or not)."""
    v_start, v_end = dm.getDepthStratum(0)
    cdim = dm.getCoordinateDim()
    coords = dm.getCoordinatesLocal().getArray(readonly=True).reshape(-1, cdim)
    csec, gsec = dm.getCoordinateSection(), dm.getGlobalSection()
    xy = np.array([coords[csec.getOffset(v) // cdim] for v in range(v_start, v_end)])
    offsets = np.array([gsec.getOffset(v) for v in range(v_start, v_end)])
    return xy, np.where(offsets >= 0, offsets, -(offsets + 1))


def plex_coordinate_vec(dm, A, axis):
    """A Vec in A's row layout whose row of vertex v holds v's coordinate ``axis``, placed by the
    global section (the reference the geometry's row order must match)."""
    xy, rows = plex_vertices(dm)
    vec = A.createVecLeft()
    start, _ = vec.getOwnershipRange()
    owned = np.array([dm.getGlobalSection().getOffset(v) >= 0
                      for v in range(*dm.getDepthStratum(0))])
    values = np.full(vec.getLocalSize(), np.nan)
    values[rows[owned] - start] = xy[owned, axis]
    vec.setArray(values)
    return vec


def without_dm(A):
    """A copy of A (as AIJ) that remembers no DM, as a code assembling without one hands it over."""
    indptr, indices, values = A.getValuesCSR()
    B = PETSc.Mat().createAIJ(A.getSizes(), csr=(indptr, indices, values), comm=A.getComm())
    B.assemble()
    return B
