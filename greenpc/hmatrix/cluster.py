"""Cluster tree: a 2^d-tree (binary in 1D, quadtree in 2D, octree in 3D) over a point cloud.

Every node owns a contiguous range ``start:stop`` of the tree numbering; ``ClusterTree.permutation``
maps tree numbering to the user's numbering and is the only place where the two meet
(``ClusterTree.indices``). Blocks of the H-matrix are products of two such ranges.
"""
from dataclasses import dataclass, field

import numpy as np

#: a node whose box is smaller than this fraction of the root's box holds numerically coincident points
COINCIDENT = 1e-12


@dataclass(eq=False)
class ClusterNode:
    """One cluster: the points ``permutation[start:stop]``, their tight bounding box and the subtree."""

    start: int
    stop: int
    low: np.ndarray
    high: np.ndarray
    depth: int
    children: list = field(default_factory=list)

    @property
    def size(self):
        return self.stop - self.start

    @property
    def is_leaf(self):
        return not self.children

    @property
    def diameter(self):
        """The bounding-box diagonal, diam in eq. 43."""
        return float(np.linalg.norm(self.high - self.low))


class ClusterTree:
    """A 2^d-tree over ``points`` (m, d), split at bounding-box midpoints down to ``leaf_size`` points.

    Attributes
    ----------
    points : ndarray (m, d)
        The points in user numbering.
    permutation : ndarray (m,)
        ``permutation[t]`` is the user index of the point numbered ``t`` in the tree.
    root : ClusterNode
    leaf_size : int
    """

    def __init__(self, points, leaf_size):
        self.leaf_size = check_leaf_size(leaf_size)
        self.points = as_points(points)
        self.permutation = np.arange(len(self.points))
        self.root = self._node(0, len(self.points), 0)
        self._split_all()

    @property
    def dim(self):
        return self.points.shape[1]

    def indices(self, node):
        """User indices of the points of ``node`` (the one translation from tree to user numbering)."""
        return self.permutation[node.start:node.stop]

    def nodes(self):
        """All nodes, parents before children."""
        stack, out = [self.root], []
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed(node.children))
        return out

    def leaves(self):
        """The leaves in tree order (their ranges tile 0..m)."""
        return [node for node in self.nodes() if node.is_leaf]

    @property
    def depth(self):
        return max(node.depth for node in self.nodes())

    def _node(self, start, stop, depth):
        own = self.points[self.permutation[start:stop]]
        if not len(own):
            # only the root of an empty cloud (an MPI rank that owns no rows): a point-sized box
            return ClusterNode(start, stop, np.zeros(self.dim), np.zeros(self.dim), depth)
        return ClusterNode(start, stop, own.min(axis=0), own.max(axis=0), depth)

    def _split_all(self):
        # iterative: a badly graded cloud may be deeper than Python's recursion limit allows
        root_extent = np.max(self.root.high - self.root.low, initial=0.0)
        stack = [self.root]
        while stack:
            node = stack.pop()
            extent = node.high - node.low
            if node.size <= self.leaf_size or extent.max() <= COINCIDENT * root_extent:
                continue
            # split only the axes at least half as long as the longest one: flat clusters (a rank's
            # slab of a grid) become roughly cubic instead of flatter, so row and column leaves match
            axes = np.flatnonzero(extent >= 0.5 * extent.max())
            segment = self.permutation[node.start:node.stop]
            middle = 0.5 * (node.low[axes] + node.high[axes])
            orthant = (self.points[segment][:, axes] >= middle) @ (1 << np.arange(len(axes)))
            order = np.argsort(orthant, kind="stable")
            self.permutation[node.start:node.stop] = segment[order]
            counts = np.bincount(orthant, minlength=1 << len(axes))
            bounds = node.start + np.concatenate([[0], np.cumsum(counts)])
            # the box is tight, so both halves of a split axis hold a point: no child is the whole node
            node.children = [self._node(int(a), int(b), node.depth + 1)
                             for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
            stack.extend(node.children)


def as_points(points):
    """``points`` as a float64 array (m, d) with 1 <= d <= 3 (a 1D array is m points in 1D)."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim == 1:
        points = points[:, None]
    if points.ndim != 2 or not 1 <= points.shape[1] <= 3:
        raise ValueError(f"points must be an array (m, d) with d in 1..3, got shape {points.shape}")
    if not np.all(np.isfinite(points)):
        raise ValueError("points must be finite")
    return points


def check_leaf_size(leaf_size):
    """``leaf_size`` as a positive int, or a ValueError naming it."""
    try:
        valid = not isinstance(leaf_size, bool) and float(leaf_size).is_integer() and leaf_size > 0
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"leaf_size must be a positive integer, got {leaf_size!r}")
    return int(leaf_size)


def paper_leaf_size(dim, n_grid):
    """The paper's maximum leaf size for a grid of n_grid points per direction.

    1D (section 5.2): min(sqrt(N), 128); 2D (section 5.3): 64 for N <= 64, else 128.
    """
    if dim == 1:
        return int(min(np.sqrt(n_grid), 128))
    return 64 if n_grid <= 64 else 128
