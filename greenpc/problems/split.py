"""A closed-form part S split off a Green's function: the trainer's network learns R = G - S and the
kernel adds S back. Two kinds, each under its own key of a weight file's problem record:

- ``modes``: the near-resonant eigenmodes of -lap - k2 n^2 (``problems.modes``), which hold G's poles in k2;
- ``free_space``: the mollified fundamental solution of the principal part -div(A grad u)
  (``problems.freespace``), which holds G's singularity, so that R has no delta to learn.

A Helmholtz model may split off both (``Sum``): S = S_free + S_modes. Each part gives
``kernel(x, y, values, spacing=None, xp=np)``, ``remainder_source(x, y, values, delta, xp)`` (the source
of R given what is left of it: delta - L S_part), ``zero_on_boundary``, ``removes_source``,
``to_dict()`` and ``describe()``; a part that is not zero on the boundary also gives
``boundary_kernel(x, y, values, xp)``, S on the boundary (the trainer's boundary term).
"""
import numpy as np

KINDS = ("free_space", "modes")


class Sum:
    """Several split-off parts at once: S is their sum, and R's source loses each part's L S."""

    def __init__(self, parts):
        self.parts = tuple(parts)
        self.zero_on_boundary = all(p.zero_on_boundary for p in self.parts)
        self.removes_source = any(p.removes_source for p in self.parts)

    def kernel(self, x, y, values, spacing=None, xp=np):
        total = 0.0
        for part in self.parts:
            total = total + part.kernel(x, y, values, spacing, xp)
        return total

    def boundary_kernel(self, x, y, values, xp=np):
        """S on the boundary, from the parts that do not vanish there (a resonant mode is zero there,
        but its pole times that zero is no number near an eigenvalue)."""
        total = 0.0
        for part in self.parts:
            if not part.zero_on_boundary:
                total = total + part.boundary_kernel(x, y, values, xp)
        return total

    def remainder_source(self, x, y, values, delta, xp=np):
        for part in self.parts:
            delta = part.remainder_source(x, y, values, delta, xp)
        return delta

    def describe(self):
        return " and ".join(p.describe() for p in self.parts)


def combine(parts):
    """None, the one part, or their Sum."""
    parts = [p for p in parts if p is not None]
    return None if not parts else parts[0] if len(parts) == 1 else Sum(parts)


def from_record(preset, problem):
    """The split part a weight file's problem record names, or None."""
    parts = []
    if "free_space" in problem:
        from .freespace import FreeSpace

        parts.append(FreeSpace.from_dict(preset, problem["free_space"]))
    if "modes" in problem:
        from .modes import ResonantModes, medium_of

        medium = medium_of(preset, problem.get("params", {}))
        parts.append(ResonantModes.from_dict(preset.dim, problem["modes"], medium))
    return combine(parts)


def to_record(part):
    """``{key: record}`` for a weight file's problem record (empty for None)."""
    if part is None:
        return {}
    from .freespace import FreeSpace

    out = {}
    for piece in part.parts if isinstance(part, Sum) else (part,):
        out["free_space" if isinstance(piece, FreeSpace) else "modes"] = piece.to_dict()
    return out
