"""Kernel evaluation of many blocks in few large calls.

A learned kernel pays a fixed overhead per call (dispatch, host-device transfer), so the blocks an
H-matrix needs (all near blocks, all landmark rows and columns of all far blocks) are laid end to end
and evaluated in calls of ``batch_pairs`` pairs, regardless of where one block ends and the next begins.
"""
import numpy as np

#: pairs per kernel call: large enough to amortize a call, small enough for the coordinates in memory
BATCH_PAIRS = 1 << 21


class BlockEvaluator:
    """Evaluates blocks K(row_points[I], col_points[J]) for lists of index pairs (I, J).

    Attributes
    ----------
    kernel : Kernel
    row_points, col_points : ndarray (m, d), (n, d)
    batch_pairs : int
        The most pairs handed to the kernel in one call.
    calls : int
        Kernel calls made so far.
    """

    def __init__(self, kernel, row_points, col_points, batch_pairs=BATCH_PAIRS):
        if batch_pairs <= 0:
            raise ValueError(f"batch_pairs must be positive, got {batch_pairs!r}")
        self.kernel, self.row_points, self.col_points = kernel, row_points, col_points
        self.batch_pairs = int(batch_pairs)
        self.calls = 0

    def __call__(self, blocks):
        """The dense blocks, one (len(I), len(J)) array per (I, J) in ``blocks``, in that order.

        The arrays are views into one buffer, which is exactly their total size.
        """
        shapes = [(len(rows), len(cols)) for rows, cols in blocks]
        offsets = np.concatenate([[0], np.cumsum([m * n for m, n in shapes], dtype=np.int64)])
        values = np.empty(offsets[-1])
        dim = self.row_points.shape[1]
        for start in range(0, int(offsets[-1]), self.batch_pairs):
            stop = min(start + self.batch_pairs, int(offsets[-1]))
            x, y = np.empty((stop - start, dim)), np.empty((stop - start, dim))
            first = int(np.searchsorted(offsets, start, side="right")) - 1
            last = int(np.searchsorted(offsets, stop, side="left"))
            for b in range(first, last):
                rows, cols = blocks[b]
                # the part of block b inside [start, stop), by flat row-major position
                a, e = max(start, offsets[b]) - offsets[b], min(stop, offsets[b + 1]) - offsets[b]
                here = slice(offsets[b] + a - start, offsets[b] + e - start)
                if e - a == len(rows) * len(cols):
                    # a whole block: broadcast into the buffer, no index arrays
                    x[here].reshape(len(rows), len(cols), dim)[:] = self.row_points[rows][:, None, :]
                    y[here].reshape(len(rows), len(cols), dim)[:] = self.col_points[cols][None, :, :]
                else:
                    i, j = np.divmod(np.arange(a, e), len(cols))
                    x[here], y[here] = self.row_points[rows[i]], self.col_points[cols[j]]
            values[start:stop] = self.kernel(x, y)
            self.calls += 1
        return [values[offsets[b]:offsets[b + 1]].reshape(shape) for b, shape in enumerate(shapes)]
