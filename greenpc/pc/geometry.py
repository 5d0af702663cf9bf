"""Coordinates of the points behind the matrix rows a rank owns, from whatever the PETSc code provides.

Precedence (first found wins):

1. coordinates given to the PC: ``PCSetCoordinates`` (as GAMG users do) or ``greenpc.set_coordinates``;
2. a coordinates ``Vec`` the caller composed on the PC or on the Pmat as ``"greenpc_coordinates"``
   (block size d, or d entries per local row);
3. the DM of the PC (the KSP's): a DMDA's coordinates, or, with none set, the uniform grid on [0, 1]^d
   (point i of M along an axis at i / (M - 1), as DMDASetUniformCoordinates(0, 1) would place it);
   a DMPlex's vertex coordinates when its unknowns live on the vertices.

Rows must be in the same parallel layout as the matrix; an error names every source when none is found.
"""
import numpy as np
from petsc4py import PETSc

COMPOSED = "greenpc_coordinates"
SOURCES = ("PCSetCoordinates / greenpc.set_coordinates(pc, xyz)",
           f"a coordinates Vec composed on the PC or the Pmat as {COMPOSED!r}",
           "a DMDA (with or without coordinates) or a DMPlex with vertex unknowns set on the KSP/PC")


class GeometryError(ValueError):
    pass


def _from_vec(vec, n_local, what):
    array = vec.getArray(readonly=True).copy()
    if n_local == 0 or array.size % n_local:
        raise GeometryError(f"{what} holds {array.size} local entries, not a multiple of the "
                            f"{n_local} local rows")
    return array.reshape(n_local, array.size // n_local)


def _from_dmda(da):
    if da.getDof() != 1:
        raise GeometryError(f"the DMDA has {da.getDof()} unknowns per point; greenpc needs 1")
    coords = da.getCoordinates()
    dim = da.getDim()
    if coords is not None:
        return coords.getArray(readonly=True).reshape(-1, dim).copy()
    sizes = da.getSizes()
    axes = [np.arange(s, e) / max(n - 1, 1) for (s, e), n in zip(da.getRanges(), sizes)]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.transpose().ravel() for m in mesh], axis=-1)


def _from_plex(dm, n_local):
    start, end = dm.getDepthStratum(0)
    section = dm.getGlobalSection()
    owned = [p for p in range(start, end) if section.getDof(p) > 0 and section.getOffset(p) >= 0]
    coords = dm.getCoordinatesLocal().getArray(readonly=True).reshape(-1, dm.getCoordinateDim())
    if len(owned) != n_local:
        raise GeometryError(f"the DMPlex owns {len(owned)} vertices with unknowns but the matrix has "
                            f"{n_local} local rows: greenpc needs one unknown per vertex")
    csec = dm.getCoordinateSection()
    order = np.argsort([section.getOffset(p) for p in owned])
    points = np.array([coords[csec.getOffset(p) // dm.getCoordinateDim()] for p in owned])
    return points[order]


def local_coordinates(pc, n_local):
    """(n_local, d) coordinates of this rank's rows, and a word on where they came from."""
    given = getattr(pc, "_greenpc_coordinates", None)
    if given is not None:
        return np.asarray(given, dtype=np.float64).reshape(n_local, -1), "PC coordinates"
    _, pmat = pc.getOperators()
    for owner, name in ((pc, "PC"), (pmat, "Pmat")):
        vec = owner.query(COMPOSED)
        if vec is not None:
            return _from_vec(PETSc.Vec(vec) if not isinstance(vec, PETSc.Vec) else vec, n_local,
                             f"the coordinates Vec composed on the {name}"), f"Vec on the {name}"
    dm = pc.getDM()
    dm = dm if dm else None  # petsc4py wraps a missing DM as a null handle, which is falsy
    if dm is not None and dm.getType() == PETSc.DM.Type.DA:
        return _from_dmda(PETSc.DMDA(dm) if not isinstance(dm, PETSc.DMDA) else dm), "DMDA"
    if dm is not None and dm.getType() == PETSc.DM.Type.PLEX:
        return _from_plex(dm, n_local), "DMPlex vertices"
    raise GeometryError("no geometry: greenpc needs the coordinates of the matrix rows from one of: "
                        + "; ".join(SOURCES))


def gather(comm, local):
    """All ranks' coordinates in rank order (PETSc's global row order)."""
    mpi = comm.tompi4py()
    pieces = mpi.allgather(np.ascontiguousarray(local))
    return np.concatenate(pieces, axis=0)
