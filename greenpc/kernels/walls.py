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

Cost. A block of grid rows against a set of columns (the dense format's row blocks) takes the table of
its wall points against those columns, kept while the columns stay the same. At N = 64 the dense set-up
evaluated 7% more pairs and took 19.6 s against 13.7 s. Scattered pairs (ACA's rows and columns, batched
near blocks) take each distinct (wall point, y) pair they need, up to 8 per pair for a single row. The
H-matrix at N = 64 evaluated 2x more pairs and took 75.7 s against 12.5 s (9 iterations against 13). A
table of every wall point against every column, made once per set-up, would remove most of that; it is
not built yet.
"""
import numpy as np

from ..problems.grid import distinct_points
from .base import Wrapped


def _codes(values):
    """(distinct values, index of each value among them) of a 1D array."""
    return np.unique(values, return_inverse=True)


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
        if self.dim not in (1, 2):
            raise ValueError(f"the wall correction is for 1D and 2D boxes; {inner.describe()} is "
                             f"{self.dim}D")
        self.low, self.high = (np.broadcast_to(np.asarray(v, dtype=np.float64), (self.dim,)).copy()
                               for v in self.domain)

    def describe(self):
        return f"{self.inner.describe()}, less its wall values' interpolant in x"

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
