"""A closed-form part S split off a Green's function: the trainer's network learns R = G - S and the
kernel adds S back. Two kinds, each under its own key of a weight file's problem record:

- ``modes``: the near-resonant eigenmodes of -lap - k2 n^2 (``problems.modes``), which hold G's poles in k2;
- ``free_space``: the mollified fundamental solution of -div(A grad u) (``problems.freespace``), which
  holds G's singularity, so that R has no source at all.

Both give ``kernel(x, y, values, spacing=None, xp=np)``, ``remainder_source(x, y, values, delta, xp)``,
``zero_on_boundary``, ``to_dict()`` and ``describe()``.
"""
KINDS = ("modes", "free_space")


def from_record(preset, problem):
    """The split part a weight file's problem record names, or None."""
    if "modes" in problem:
        from .modes import ResonantModes, medium_of

        medium = medium_of(preset, problem.get("params", {}))
        return ResonantModes.from_dict(preset.dim, problem["modes"], medium)
    if "free_space" in problem:
        from .freespace import FreeSpace

        return FreeSpace.from_dict(preset, problem["free_space"])
    return None


def to_record(part):
    """``{key: record}`` for a weight file's problem record (empty for None)."""
    if part is None:
        return {}
    from .freespace import FreeSpace

    return {"free_space" if isinstance(part, FreeSpace) else "modes": part.to_dict()}
