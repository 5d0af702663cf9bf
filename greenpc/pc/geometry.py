"""Coordinates of the points behind the matrix rows a rank owns, from whatever the PETSc code provides.

Precedence (the first source present wins):

1. coordinates given to the PC. ``PCSetCoordinates(pc, dim, nloc, xyz)`` from C or
   ``pc.setCoordinates(xyz)`` from petsc4py (as GAMG users do; call it once the PC is greenpc, e.g.
   after ``KSPSetFromOptions``), ``greenpc.set_coordinates(pc, xyz)``, and a Vec the caller composed
   on the PC as ``"greenpc_coordinates"`` all fill the same slot (that composed Vec): the last one
   given wins;
2. a coordinates Vec composed on the Pmat as ``"greenpc_coordinates"`` (it travels with the matrix);
3. the DM of the PC (``KSPSetDM``; PCFIELDSPLIT, PCKSP and PCCOMPOSITE hand theirs down):
   a DMDA's coordinates, or, with none set, the uniform grid on [0, 1]^d (point i of M along an axis
   at i / (M - 1), where ``DMDASetUniformCoordinates(da, 0, 1, ...)`` would put it); a DMPlex's
   vertex coordinates when its global section has one unknown on each vertex and none elsewhere;
4. the DM the Pmat was created from (``DMCreateMatrix`` records it), by the same rules.

A composed Vec holds d entries per local row (interlaced, block size d), in the matrix's parallel
layout. When no source is present the error names all of them.

PCFIELDSPLIT's blocks of a DMDA get one-unknown sub-DMDAs without coordinates (PETSc does not copy
them), so the blocks use the uniform grid on [0, 1]^d; on another domain, give each block its points
after ``KSPSetUp`` and before the solve (the blocks set up at the first solve):
``for sub in pc.getFieldSplitSubKSP(): greenpc.set_coordinates(sub.getPC(), xyz)``.
"""
import ctypes
import os

import numpy as np
from petsc4py import PETSc

COMPOSED = "greenpc_coordinates"
SOURCES = ("PCSetCoordinates(pc, dim, nloc, xyz) / pc.setCoordinates(xyz) after the PC is greenpc, "
           "or greenpc.set_coordinates(pc, xyz)",
           f"a coordinates Vec composed on the PC or on the Pmat as {COMPOSED!r} "
           "(d entries per local row)",
           "a DMDA (with or without coordinates) or a DMPlex with one unknown per vertex, set on the "
           "KSP/PC or the one the Pmat was created from (DMCreateMatrix)")


class GeometryError(ValueError):
    pass


def coordinates_vec(coordinates):
    """A sequential Vec (block size d) holding ``coordinates`` (n_local, d), to compose on a PC/Mat."""
    array = np.asarray(coordinates, dtype=PETSc.RealType)
    array = array[:, None] if array.ndim == 1 else array  # 1D points given as a flat list
    vec = PETSc.Vec().createSeq(array.size, bsize=max(array.shape[1], 1), comm=PETSc.COMM_SELF)
    vec.setArray(array.ravel())
    return vec


# -- PCSetCoordinates for a python PC ------------------------------------------------------------
# PCSetCoordinates calls the PC's composed "PCSetCoordinates_C" and silently does nothing when there
# is none, which is the case for PCPYTHON. GreenPC.create composes this C callback, which stores the
# coordinates as the Vec of source 1. It lives as long as the process (PETSc may call it after the
# context is gone), and depends on nothing but its arguments.

_PETSC_INT = ctypes.c_int64 if np.dtype(PETSc.IntType).itemsize == 8 else ctypes.c_int32
_PETSC_REAL = ctypes.c_float if np.dtype(PETSc.RealType).itemsize == 4 else ctypes.c_double
_SET_COORDINATES_TYPE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, _PETSC_INT, _PETSC_INT,
                                         ctypes.POINTER(_PETSC_REAL))
PETSC_ERR_ARG_SIZ = 60
_library = None


def _libpetsc():
    """The libpetsc this process runs (a C program's own, or petsc4py's), opened with ctypes."""
    global _library
    if _library is None:
        path = None
        try:
            with open("/proc/self/maps") as maps:
                path = next((line.split()[-1] for line in maps
                             if os.path.basename(line.split()[-1]).startswith("libpetsc.")), None)
        except OSError:
            pass
        if path is None:
            import petsc4py

            config = petsc4py.get_config()
            lib_dir = os.path.join(config["PETSC_DIR"], config.get("PETSC_ARCH") or "", "lib")
            path = next(os.path.join(lib_dir, name) for name in ("libpetsc.so", "libpetsc.dylib")
                        if os.path.exists(os.path.join(lib_dir, name)))
        library = ctypes.CDLL(path)
        library.PetscObjectCompose.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
        library.PetscObjectComposeFunction_Private.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                                               ctypes.c_void_p]
        _library = library
    return _library


def _set_coordinates_c(pc, dim, n_local, coords):
    try:
        count = int(dim) * int(n_local)
        values = np.ctypeslib.as_array(coords, shape=(count,)) if count else np.zeros(0)
        vec = coordinates_vec(values.reshape(int(n_local), int(dim)))
        error = _libpetsc().PetscObjectCompose(pc, COMPOSED.encode(), vec.handle)
        vec.destroy()  # the PC holds its own reference
        return error
    except Exception as err:  # an exception must not cross into C
        PETSc.Sys.syncPrint(f"greenpc: PCSetCoordinates failed: {err}", comm=PETSc.COMM_SELF)
        return PETSC_ERR_ARG_SIZ


_SET_COORDINATES = _SET_COORDINATES_TYPE(_set_coordinates_c)


def accept_pc_coordinates(pc):
    """Make ``PCSetCoordinates`` reach greenpc on this PC; False where ctypes cannot find libpetsc."""
    try:
        library = _libpetsc()
    except (OSError, StopIteration, KeyError):
        return False
    error = library.PetscObjectComposeFunction_Private(
        pc.handle, b"PCSetCoordinates_C", ctypes.cast(_SET_COORDINATES, ctypes.c_void_p))
    return error == 0


# -- the sources ---------------------------------------------------------------------------------
def _from_vec(vec, n_local, what):
    array = vec.getArray(readonly=True).copy()
    if n_local == 0 and array.size == 0:
        return array.reshape(0, max(vec.getBlockSize(), 1)), what
    if n_local == 0 or array.size % n_local:
        raise GeometryError(f"{what} holds {array.size} local entries, not a multiple of the "
                            f"{n_local} local rows")
    return array.reshape(n_local, array.size // n_local), what


def _from_dmda(da, n_local):
    if da.getDof() != 1:
        raise GeometryError(f"the DMDA has {da.getDof()} unknowns per point; greenpc needs 1 (split "
                            "the fields with PCFIELDSPLIT, whose blocks get one-unknown DMDAs)")
    dim = da.getDim()
    ranges = da.getRanges()
    owned = int(np.prod([e - s for s, e in ranges]))
    if owned != n_local:
        raise GeometryError(f"the DMDA owns {owned} points on this rank but the Pmat has {n_local} "
                            "local rows")
    coords = da.getCoordinates()
    if coords:  # a DMDA without coordinates returns a null Vec
        return coords.getArray(readonly=True).reshape(-1, dim).copy(), "DMDA coordinates"
    axes = [np.arange(s, e) / max(n - 1, 1) for (s, e), n in zip(ranges, da.getSizes())]
    mesh = np.meshgrid(*axes, indexing="ij")  # PETSc's order: the first axis runs fastest
    points = np.stack([m.transpose().ravel() for m in mesh], axis=-1)
    return points, "DMDA grid (no coordinates set: uniform on [0, 1]^d)"


def _from_plex(dm, n_local):
    start, end = dm.getDepthStratum(0)
    section = dm.getGlobalSection()
    vertices = np.arange(start, end)
    dofs = np.array([section.getDof(p) for p in vertices], dtype=int)
    offsets = np.array([section.getOffset(p) for p in vertices], dtype=int)
    owned = (dofs > 0) & (offsets >= 0)  # unowned points carry -(offset + 1)
    if np.any(dofs[dofs > 0] != 1) or owned.sum() != n_local:
        raise GeometryError(f"the DMPlex owns {int(owned.sum())} vertices with unknowns but the "
                            f"Pmat has {n_local} local rows: greenpc needs exactly one unknown per "
                            "vertex and none on edges, faces or cells")
    cdim = dm.getCoordinateDim()
    coords = dm.getCoordinatesLocal().getArray(readonly=True).reshape(-1, cdim)
    csec = dm.getCoordinateSection()
    rows = np.array([csec.getOffset(p) // cdim for p in vertices[owned]], dtype=int)
    order = np.argsort(offsets[owned])  # global offset = row of the vertex
    return coords[rows[order]].copy(), "DMPlex vertex coordinates"


def _from_dm(dm, n_local):
    if not dm:  # petsc4py wraps a missing DM as a null handle, which is falsy
        return None
    kind = dm.getType()
    if kind == PETSc.DM.Type.DA:
        return _from_dmda(dm if isinstance(dm, PETSc.DMDA) else PETSc.DMDA(dm), n_local)
    if kind == PETSc.DM.Type.PLEX:
        return _from_plex(dm if isinstance(dm, PETSc.DMPlex) else PETSc.DMPlex(dm), n_local)
    return None


def local_coordinates(pc, n_local):
    """(n_local, d) coordinates of this rank's rows, and a word on where they came from."""
    _, pmat = pc.getOperators()
    for owner, name in ((pc, "PC coordinates (PCSetCoordinates / composed Vec)"),
                        (pmat, "coordinates Vec composed on the Pmat")):
        vec = owner.query(COMPOSED)
        if vec:
            return _from_vec(vec, n_local, name)
    for dm, where in ((pc.getDM(), ""), (pmat.getDM(), " of the Pmat")):
        found = _from_dm(dm, n_local)
        if found is not None:
            return found[0], found[1] + where
    raise GeometryError("no geometry: greenpc needs the coordinates of the matrix rows from one of: "
                        + "; ".join(SOURCES))


def gather(comm, local):
    """All ranks' coordinates in rank order (PETSc's global row order)."""
    mpi = comm.tompi4py()
    pieces = mpi.allgather(np.ascontiguousarray(local))
    return np.concatenate(pieces, axis=0)
