"""A kernel less the interpolant of its values on the walls of its box, so exactly zero there.

A learned Green's function meets the Dirichlet condition only through a loss term. The shipped react2d
model's values with x on a wall reach 9-14% of its largest entry. Near a wall the discrete inverse is of
order h at distance h, so that offset is a relative error that grows as 1/h:

- A M gets eigenvalues up to 2, whose eigenvectors lie within a few rows of the boundary;
- FGMRES's count grows with N: dense 13 / 16.7 / 20 at N = 64 / 96 / 128.

The corrected kernel is K'(x, y) = K(x, y) - I[K(., y)](x). I interpolates the wall values in x (Coons'
transfinite interpolation): linear between the two end points in 1D, and in 2D

    I[f](x) = (1 - s) f(lo, x2) + s f(hi, x2) + (1 - t) f(x1, lo) + t f(x1, hi)
              - [(1 - s)(1 - t) f(lo, lo) + s (1 - t) f(hi, lo) + (1 - s) t f(lo, hi) + s t f(hi, hi)]

with (s, t) the point scaled to [0, 1]^2. I reproduces bilinear functions, so K' vanishes on every wall,
and the correction is smooth. Only x is corrected. The network learned its values with x on a wall (the
boundary loss) but never with the source y there: correcting in y as well took 54-62 iterations.

Measured with react2d, dense: 13.0 / 16.7 / 20.0 -> 9.3 / 10.0 / 10.0 at N = 64 / 96 / 128.

Cost. ``prepare(points)`` (the PC calls it once per dense or H-matrix set-up) tabulates K(w, y) for
every wall point w that the points' coordinates reach and every point y: (2 (n1 + n2) + 4) n pairs in
2D, 4N + 4 rows against n columns on an N x N grid (the ranks of a communicator share the columns and
gather the table). Calls whose points all lie in the table look their wall values up (4 values per pair,
about 4% of a network evaluation). Other calls find them themselves: a block of grid rows against a set
of columns tabulates its own wall points against those columns, kept while the columns stay the same;
scattered pairs (the sparse format's) take each distinct (wall point, y) pair
they need, up to 8 per pair. react2d's H-matrix (ACA 1e-4) with the table: N = 64, 14.0 s of set-up
against 10.0 s without the correction (75.7 s with per-call wall values); N = 128, 88.4 s (8.5M table
pairs) against 77 s (401 s per call), 10 iterations against 20.
"""
import hashlib

import numpy as np

from ..problems.grid import distinct_points
from .base import Wrapped


def _codes(values):
    """(distinct values, index of each value among them) of a 1D array."""
    return np.unique(values, return_inverse=True)


def _keys(points):
    """One sortable number per point: complex numbers sort by real part, then imaginary part."""
    return points[:, 0] + 1j * points[:, -1] if points.shape[1] == 2 else points[:, 0] + 0j


def _find(table, values):
    """Index of each of ``values`` in the sorted array ``table``, or None when one is not there."""
    if len(table) == 0:
        return None
    index = np.minimum(np.searchsorted(table, values), len(table) - 1)
    return index if np.array_equal(table[index], values) else None


class _Axis:
    """The sorted distinct coordinates ``values`` of one axis, found by arithmetic on a uniform grid
    (each hit checked for equality) and by binary search for the rest."""

    def __init__(self, values):
        self.values = values
        self.first = values[0]
        self.inverse_step = (len(values) - 1) / (values[-1] - values[0]) if len(values) > 1 else 0.0

    def find(self, x):
        """The index of each of ``x`` among the values, or None when one is not there."""
        values = self.values
        index = np.rint((x - self.first) * self.inverse_step).astype(np.int64)
        np.clip(index, 0, len(values) - 1, out=index)
        missed = values[index] != x
        if missed.any():
            found = _find(values, x[missed])
            if found is None:
                return None
            index[missed] = found
        return index


class WallTable:
    """Coons' interpolant of K(., y)'s wall values for each y of a set of points, from the table of the
    wall points (``walls``, at the points' coordinates, one sorted array per axis) against those points.

    Kept wall-major, in the form the interpolant needs: in 1D the rows K(low, y) and K(high, y) -
    K(low, y); in 2D, for each v1, D = K((v1, low), y) and U - D (U on the high wall), and for each v2,
    L' and R' - L', where L' and R' are the left and right walls' values less the linear interpolant of
    their two corners along the wall. Then, with (s, t) the point scaled to [0, 1]^2,

        I(x) = D[x1] + t (U - D)[x1] + L'[x2] + s (R' - L')[x2]

    which is the transfinite interpolant: (1 - s) L' + s R' holds its bilinear corner term.
    """

    def __init__(self, low, high, coordinates, keys, values):
        """``values`` (n_y, n_walls): K at the y of ``keys`` (sorted ``_keys``) against ``walls``."""
        self.low, self.high, self.keys = low, high, keys
        self.axes = [_Axis(v) for v in coordinates]
        #: every combination of the coordinates is a point: y's row is found from its coordinates
        self.tensor = len(keys) == np.prod([len(v) for v in coordinates])
        walls = values.T
        if len(coordinates) == 1:
            self.rows = np.stack([walls[0], walls[1] - walls[0]])
            return
        v1, v2 = coordinates
        n1, n2 = len(v1), len(v2)
        left, right, down, up = walls[:n2], walls[n2:2 * n2], walls[2 * n2:2 * n2 + n1], walls[2 * n2 + n1:-4]
        c = walls[-4:]
        t = ((v2 - low[1]) / (high[1] - low[1]))[:, None]
        left = left - ((1.0 - t) * c[0] + t * c[2])
        right = right - ((1.0 - t) * c[1] + t * c[3])
        self.rows = np.concatenate([down, up - down, left, right - left])

    @staticmethod
    def walls(low, high, coordinates):
        """The wall points (p, d) of the table's columns: in 1D the two ends; in 2D (low, v2), (high, v2),
        (v1, low), (v1, high) for each v1, v2, then the corners (low, low), (high, low), (low, high),
        (high, high)."""
        if len(coordinates) == 1:
            return np.array([[low[0]], [high[0]]])
        v1, v2 = coordinates
        return np.concatenate([np.stack([np.full_like(v2, low[0]), v2], 1),
                               np.stack([np.full_like(v2, high[0]), v2], 1),
                               np.stack([v1, np.full_like(v1, low[1])], 1),
                               np.stack([v1, np.full_like(v1, high[1])], 1),
                               np.array([[low[0], low[1]], [high[0], low[1]], [low[0], high[1]],
                                         [high[0], high[1]]])])

    def _columns(self, y):
        """Each y's column in the table, or None when one is not there."""
        if not self.tensor:
            return _find(self.keys, _keys(y))
        found = [axis.find(y[:, k]) for k, axis in enumerate(self.axes)]
        if any(f is None for f in found):
            return None
        return found[0] if len(found) == 1 else found[0] * len(self.axes[1].values) + found[1]

    def interpolant(self, x, y):
        """The interpolant of K(., y_i)'s wall values at x_i for each pair, or None when a point is not
        in the table."""
        columns = self._columns(y)
        if columns is None:
            return None
        n_y = self.rows.shape[1]
        flat = self.rows.reshape(-1)
        s = (x[:, 0] - self.low[0]) / (self.high[0] - self.low[0])
        if x.shape[1] == 1:
            return flat[columns] + s * flat[n_y + columns]
        c1, c2 = self.axes[0].find(x[:, 0]), self.axes[1].find(x[:, 1])
        if c1 is None or c2 is None:
            return None
        n1, n2 = len(self.axes[0].values), len(self.axes[1].values)
        t = (x[:, 1] - self.low[1]) / (self.high[1] - self.low[1])
        at1, at2 = c1 * n_y + columns, (2 * n1 + c2) * n_y + columns
        out = flat[at1] + t * flat[at1 + n1 * n_y]
        out += flat[at2]
        out += s * flat[at2 + n2 * n_y]
        return out


class WallCorrected(Wrapped):
    """K'(x, y) = K(x, y) less the interpolant of K(., y)'s values on the walls of the box (1D, 2D)."""

    #: pairs per evaluation: the wall values are found once per call, so larger calls repeat fewer
    chunk = 1 << 21

    def __init__(self, inner):
        super().__init__(inner)
        self.chunk = max(self.chunk, inner.chunk)
        #: pairs evaluated at wall points, beyond those asked for (reported by the PC)
        self.wall_evaluations = 0
        self._cached_y, self._cache = None, {}
        #: the WallTable of the points last prepared, and their digest
        self.table, self._prepared = None, None
        if self.dim not in (1, 2):
            raise ValueError(f"the wall correction is for 1D and 2D boxes; {inner.describe()} is "
                             f"{self.dim}D")
        self.low, self.high = (np.broadcast_to(np.asarray(v, dtype=np.float64), (self.dim,)).copy()
                               for v in self.domain)

    def describe(self):
        return f"{self.inner.describe()}, less its wall values' interpolant in x"

    def prepare(self, points):
        """Tabulate K(w, y) for every wall point w at the coordinates of ``points`` and every y among
        them, once per distinct set of points (on one process; ranks use ``share`` and ``install``)."""
        self.install(self.share(points))

    def share(self, points, rank=0, size=1):
        """This rank's share of the table of ``points``: every wall point against its part of the
        columns (rank-local work), or None when the table of these points is there already."""
        points = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, self.dim)
        digest = hashlib.sha256(points.tobytes()).digest()
        if digest == self._prepared:
            return None
        self.discard()    # an old table must not outlive its points
        keys = np.unique(_keys(points))
        coordinates = [np.unique(points[:, axis]) for axis in range(self.dim)]
        walls = WallTable.walls(self.low, self.high, coordinates)
        counts = [len(part) for part in np.array_split(np.arange(len(keys)), size)]
        start = sum(counts[:rank])
        ys = np.stack([keys.real, keys.imag], 1)[start:start + counts[rank], :self.dim]
        mine = np.empty((len(ys), len(walls)))
        step = max(1, self.chunk // len(walls))
        for first in range(0, len(ys), step):
            # every wall point against a group of columns, stored column by column for the gather
            mine[first:first + step] = self.inner.block(walls, ys[first:first + step]).T
        self.wall_evaluations += mine.size
        return {"digest": digest, "keys": keys, "coordinates": coordinates, "counts": counts,
                "values": mine}

    def install(self, share, comm=None):
        """Make the table from the ranks' shares (an mpi4py ``comm``'s Allgatherv; collective)."""
        if share is None:
            return
        values = share["values"]
        if comm is not None and comm.Get_size() > 1:
            from mpi4py import MPI
            width = values.shape[1]
            counts = [count * width for count in share["counts"]]
            values = np.empty((len(share["keys"]), width))
            comm.Allgatherv(share["values"], [values, counts, np.cumsum([0] + counts[:-1]), MPI.DOUBLE])
        self.table = WallTable(self.low, self.high, share["coordinates"], share["keys"], values)
        self._prepared = share["digest"]

    def discard(self):
        """Forget the table (the calls find their wall values themselves)."""
        self.table, self._prepared = None, None

    def _at(self, wall, coordinate, y_codes, y_points):
        """The inner kernel at (w, y) for each pair, w the wall point ``wall(values)`` built from the
        pairs' ``coordinate`` (or a corner when it is None): once per distinct (w, y)."""
        if coordinate is None:
            w_values, w_codes = np.zeros(1), np.zeros(len(y_codes), dtype=np.int64)
        else:
            w_values, w_codes = _codes(coordinate)
            w_codes = w_codes.reshape(-1)
        n_y = len(y_points)
        unique_keys, back = np.unique(w_codes * n_y + y_codes, return_inverse=True)
        values = self.inner(wall(w_values[unique_keys // n_y]), y_points[unique_keys % n_y])
        self.wall_evaluations += len(unique_keys)
        return values[back.reshape(-1)]

    def _table(self, walls, y_points):
        """K(w, y) for the wall points ``walls`` (p, d) by every y of ``y_points``: (p, n_y), the rows
        kept for as long as the calls keep the same y points (a dense build's row blocks do)."""
        key = y_points.tobytes()
        if key != self._cached_y:
            self._cached_y, self._cache = key, {}
        names = [w.tobytes() for w in walls]
        missing = [name for name in dict.fromkeys(names) if name not in self._cache]
        if missing:
            points = np.frombuffer(b"".join(missing), dtype=np.float64).reshape(len(missing), self.dim)
            block = self.inner.block(points, y_points)
            self.wall_evaluations += block.size
            self._cache.update(zip(missing, block))
        return np.stack([self._cache[name] for name in names])

    def _evaluate(self, x, y):
        out = self.inner(x, y)
        if self.table is not None:
            interpolant = self.table.interpolant(x, y)
            if interpolant is not None:
                return out - interpolant
        y_points, y_codes = distinct_points(y)
        lo, hi = self.low, self.high
        s = (x - lo) / (hi - lo)
        if self.dim == 1:
            ends = self._table(np.array([[lo[0]], [hi[0]]]), y_points)
            return out - ((1.0 - s[:, 0]) * ends[0, y_codes] + s[:, 0] * ends[1, y_codes])
        a, b = s[:, 0], s[:, 1]
        (v1, c1), (v2, c2) = _codes(x[:, 0]), _codes(x[:, 1])
        c1, c2 = c1.reshape(-1), c2.reshape(-1)
        corner_points = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [lo[0], hi[1]], [hi[0], hi[1]]])
        if (2 * (len(v1) + len(v2)) + 4) * len(y_points) <= 8 * len(x):
            # a block of the grid: the whole table of its wall points, most of it needed (and kept)
            left, right = (self._table(np.stack([np.full_like(v2, e), v2], 1), y_points) for e in (lo[0], hi[0]))
            low, high = (self._table(np.stack([v1, np.full_like(v1, e)], 1), y_points) for e in (lo[1], hi[1]))
            corners = self._table(corner_points, y_points)
            edges = ((1.0 - a) * left[c2, y_codes] + a * right[c2, y_codes]
                     + (1.0 - b) * low[c1, y_codes] + b * high[c1, y_codes])
            corner = [corners[k, y_codes] for k in range(4)]
        else:
            # scattered pairs (a row of a far block, near blocks batched): only the pairs needed
            def side(axis, end):
                other = x[:, 1 - axis]
                return self._at(lambda v: np.insert(v[:, None], axis, end, axis=1), other, y_codes, y_points)

            edges = ((1.0 - a) * side(0, lo[0]) + a * side(0, hi[0])
                     + (1.0 - b) * side(1, lo[1]) + b * side(1, hi[1]))
            corner = [self._at(lambda v, c=c: np.tile(c, (len(v), 1)), None, y_codes, y_points)
                      for c in corner_points]
        corners = ((1.0 - a) * (1.0 - b) * corner[0] + a * (1.0 - b) * corner[1]
                   + (1.0 - a) * b * corner[2] + a * b * corner[3])
        return out - (edges - corners)
