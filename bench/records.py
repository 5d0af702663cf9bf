"""Result files of the benchmarks: JSON written by rank 0, plots, growth-exponent fits, option lists."""
import json
import math
import os
import time

import numpy as np
from petsc4py import PETSc

import machine

RESULTS = "bench/results"


def log(text):
    PETSc.Sys.Print(text)


def integers(text):
    return [int(v) for v in str(text).split(",") if v.strip()]


def names(text):
    return [v.strip() for v in str(text).split(",") if v.strip()]


def save(path, data, comm=None):
    """Write ``data`` as JSON on rank 0 (folders created; non-finite floats as null)."""
    comm = comm or PETSc.COMM_WORLD
    if comm.getRank() != 0:
        return
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as handle:
        json.dump(finite(data), handle, indent=1)


def finite(value):
    """``value`` with NaN and infinities replaced by None (strict JSON), numpy scalars as Python."""
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.ndarray):
        return finite(value.tolist())
    return value


class Results:
    """One driver's JSON file: the machine first, saved after every measurement (a run cut short keeps
    what it measured), the PNG beside it at the end. ``fields`` start the data beside the machine."""

    def __init__(self, path, opts, what, comm=None, **fields):
        self.comm = comm or PETSc.COMM_WORLD
        self.path, self.started = path, time.perf_counter()
        self.data = {"machine": machine.describe(self.comm), "options": opts, **fields}
        log(f"{what} on {machine.label(self.data['machine'])}")

    def save(self):
        self.data["seconds"] = time.perf_counter() - self.started
        save(self.path, self.data, self.comm)

    def finish(self, plot=None):
        """Save, and on rank 0 draw ``plot(png_path, data)`` beside the JSON."""
        self.save()
        if plot is not None and self.comm.getRank() == 0:
            plot(os.path.splitext(self.path)[0] + ".png", self.data)
        log(f"wrote {self.path} ({self.data['seconds']:.0f} s)")


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend, imported only when a plot is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, title, fontsize=10):
    fig.suptitle(title, fontsize=fontsize)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot().close(fig)


def load(path):
    with open(path) as handle:
        return json.load(handle)


def growth_exponent(sizes, values):
    """p of values ~ C sizes^p: least squares in log-log over all points, and between the two largest.

    Returns {"all": p, "last": p} (None where fewer than two positive points).
    """
    pairs = sorted((float(n), float(v)) for n, v in zip(sizes, values) if v and v > 0)
    if len(pairs) < 2:
        return {"all": None, "last": None}
    x, y = np.log([p[0] for p in pairs]), np.log([p[1] for p in pairs])
    slope = float(np.polyfit(x, y, 1)[0])
    last = float((y[-1] - y[-2]) / (x[-1] - x[-2]))
    return {"all": slope, "last": last}
