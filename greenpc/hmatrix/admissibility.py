"""Which pairs of clusters interact weakly enough to be a low-rank block (eq. 43)."""
import math

import numpy as np


def box_distance(a, b):
    """Euclidean distance between the bounding boxes of clusters ``a`` and ``b`` (0 if they overlap)."""
    gap = np.maximum(0.0, np.maximum(a.low - b.high, b.low - a.high))
    return float(np.linalg.norm(gap))


class Admissibility:
    """Strong admissibility, eq. 43: max(diam I, diam J) <= eta dist(I, J).

    Called on two clusters (anything with ``low``, ``high`` and ``diameter``). A pair at distance 0
    (touching or overlapping boxes) is never admissible; ``eta = inf`` is weak admissibility (any two
    disjoint boxes), the HODLR structure under which the paper's 1D compression ratio is reached, and
    exact for 1D Green's functions, whose off-diagonal blocks have rank 1.
    """

    def __init__(self, eta):
        try:
            valid = not isinstance(eta, bool) and not math.isnan(eta) and eta > 0
        except TypeError:
            valid = False
        if not valid:
            raise ValueError(f"eta must be a positive number (or inf), got {eta!r}")
        self.eta = float(eta)

    def __call__(self, rows, cols):
        distance = box_distance(rows, cols)
        return distance > 0 and max(rows.diameter, cols.diameter) <= self.eta * distance  # eq. 43

    def __repr__(self):
        return f"Admissibility(eta={self.eta:g})"
