"""Weight files shipped with greenpc, trained by its own trainer (the command is in each file's record).

``path("react2d")`` finds a shipped model; ``resolve(text)`` accepts a path or a shipped name, as
``-greenpc_weights`` does.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
SUFFIX = ".gpc"


def names():
    """Names of the shipped models."""
    return sorted(f[: -len(SUFFIX)] for f in os.listdir(HERE) if f.endswith(SUFFIX))


def path(name):
    """The file of the shipped model ``name``."""
    candidate = os.path.join(HERE, name + SUFFIX)
    if not os.path.isfile(candidate):
        shipped = ", ".join(names()) or "none yet"
        raise FileNotFoundError(f"no shipped model {name!r} (shipped: {shipped})")
    return candidate


def resolve(text):
    """A weight file path from a path or a shipped model's name."""
    if os.path.isfile(text) or os.sep in text or text.endswith(SUFFIX):
        return text
    return path(text)
