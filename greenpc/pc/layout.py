"""The points behind a distributed matrix: local and global coordinates, boundary points, weights.

Built once per set-up from the geometry; everything the formats need to know about the mesh.
"""
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

BOUNDARY_TOL = 1e-10


@dataclass
class Layout:
    """Points of this rank's rows (``local``) and of all rows (``points``), in PETSc's row order.

    ``interior`` marks points strictly inside the kernel's domain; rows at boundary points (Dirichlet
    rows kept in the system) are served by the diagonal, not by the kernel. ``weights`` are the
    quadrature weights w_j of the columns (M_ij = G(x_i, x_j) w_j): the nearest-neighbour distance to the
    power d, h^d on a uniform grid.
    """

    points: np.ndarray
    start: int
    end: int
    interior: np.ndarray
    weights: np.ndarray
    spacing: float

    @property
    def dim(self):
        return self.points.shape[1]

    @property
    def n(self):
        return len(self.points)

    @property
    def n_local(self):
        return self.end - self.start

    @property
    def local(self):
        return self.points[self.start:self.end]

    @property
    def local_interior(self):
        return self.interior[self.start:self.end]

    @property
    def interior_ids(self):
        """Global indices of the interior points (the kernel's columns)."""
        return np.flatnonzero(self.interior)

    @property
    def local_interior_ids(self):
        """Local row indices (0-based on this rank) of the interior rows."""
        return np.flatnonzero(self.local_interior)


def on_boundary(points, domain):
    low, high = (np.broadcast_to(np.asarray(v, dtype=np.float64), (points.shape[1],)) for v in domain)
    tol = BOUNDARY_TOL * np.maximum(1.0, high - low)
    return np.any((np.abs(points - low) <= tol) | (np.abs(points - high) <= tol), axis=1)


def make_layout(points, start, end, domain):
    """The layout of ``points`` (all of them) with this rank's rows ``start:end``."""
    points = np.asarray(points, dtype=np.float64)
    tree = cKDTree(points)
    distance, _ = tree.query(points, k=2)
    nearest = distance[:, 1]
    if np.any(nearest <= 0):
        i = int(np.flatnonzero(nearest <= 0)[0])
        raise ValueError(f"point {points[i].tolist()} appears twice in the geometry")
    weights = nearest ** points.shape[1]
    spacing = float(np.median(nearest))
    return Layout(points, start, end, ~on_boundary(points, domain), weights, spacing)
