"""Faults on one rank only, under mpiexec: every rank must raise the same GreenPCError, none may hang.

    mpiexec -n 3 python tests/scripts/fault_parallel.py WEIGHTS.gpc

Runs every scenario in turn in one MPI job (an agreed error leaves no rank inside a collective, so the
next scenario starts cleanly), then a good solve. Rank 0 prints one JSON object:
``{scenario: {"texts": [error text of each rank, or null], "attempts": n}}`` and ``"solve"``.
"""
import json
import os
import sys
from itertools import count

import petsc4py

petsc4py.init(sys.argv[:1])
import numpy as np  # noqa: E402
from petsc4py import PETSc  # noqa: E402

import greenpc  # noqa: E402
from greenpc import problems  # noqa: E402
from greenpc.driver import pushed_options  # noqa: E402
from greenpc.kernels import Kernel, closed_form  # noqa: E402
from greenpc.pc.collective import GreenPCError  # noqa: E402
from greenpc.problems import dmda  # noqa: E402

COMM = PETSc.COMM_WORLD
RANK, SIZE = COMM.getRank(), COMM.getSize()
LAST = SIZE - 1
WEIGHTS = sys.argv[1]
FORMATS = {"dense": {"greenpc_format": "dense"}, "sparse": {"greenpc_format": "sparse"},
           "hmatrix": {"greenpc_format": "hmatrix"},
           "auto": {"greenpc_format": "auto", "greenpc_dense_max": "0"}}


class Shifted(Kernel):
    """shifted1d's Green's function (k2 = 20); NaN where ``bad(x, y)``, or from the ``fail_at``-th call."""

    name = "faulty shifted1d"

    def __init__(self, bad=None, fail_at=-1):
        super().__init__()
        self.inner = closed_form("shifted1d", {"k2": 20.0})
        self.bad, self.fail_at, self.calls = bad, fail_at, 0

    def _evaluate(self, x, y):
        values = self.inner._evaluate(x, y)
        self.calls += 1
        if self.calls == self.fail_at + 1:
            return values * np.nan
        return np.where(self.bad(x[:, 0], y[:, 0]), np.nan, values) if self.bad else values


def set_up(options, kernel=None, form="interior", coordinates=None, change=None):
    """This rank's GreenPCError text of a greenpc set-up on shifted1d N=48, or None."""
    problem = problems.get("shifted1d")
    grid = problems.Grid(1, 48, form)
    da, A = dmda.build(problem, grid, {"k2": 20.0})
    if change:
        change(A)
    ksp = PETSc.KSP().create()
    ksp.setOperators(A)
    ksp.setDM(da)
    ksp.setDMActive(PETSc.KSP.DMActive.ALL, False)
    base = {"pc_type": "python", "pc_python_type": "greenpc.GreenPC"}
    if kernel is not None:
        greenpc.create(ksp.getPC(), kernel=kernel)
        base = {}
    if coordinates is not None:
        greenpc.set_coordinates(ksp.getPC(), coordinates(da))
    text = None
    with pushed_options({**base, **options}):
        try:
            ksp.setFromOptions()
            ksp.setUp()
        except PETSc.Error as err:
            while err is not None and not isinstance(err, GreenPCError):
                err = err.__cause__ or err.__context__
            text = str(err) if err is not None else "a PETSc error without a GreenPCError"
    ksp.destroy()
    A.destroy()
    da.destroy()
    return text


def only(rank, bad, good):
    return bad if RANK == rank else good


def bad_first_point(da):
    points = da.getCoordinates().getArray().reshape(-1, 1).copy()
    if RANK == 0:
        points[0] = -0.25
    return points


def zero_last_boundary_diagonal(A):
    if RANK == LAST:
        last = A.getSize()[0] - 1
        A.setValue(last, last, 0.0)
    A.assemble()


class Raise:
    """Patches ``module.name`` on one rank to raise an exception of an unexpected type."""

    def __init__(self, module, name, rank):
        self.module, self.name, self.rank = module, name, rank

    def __enter__(self):
        self.saved = getattr(self.module, self.name)
        if RANK == self.rank:
            def broken(*args, **kwargs):
                raise TypeError(f"injected fault in {self.name}")
            setattr(self.module, self.name, broken)

    def __exit__(self, *exc):
        setattr(self.module, self.name, self.saved)


def scenarios():
    from greenpc import hmatrix
    from greenpc.pc import context, formats, geometry, scaling

    closed = {"greenpc_kernel": "shifted1d", "greenpc_param": "k2=20"}
    missing = os.path.join(os.path.dirname(WEIGHTS), "missing-on-this-rank.gpc")
    truncated = os.path.join(os.path.dirname(WEIGHTS), f"truncated-{RANK}.gpc")
    with open(WEIGHTS, "rb") as source, open(truncated, "wb") as out:
        out.write(source.read()[:300])
    yield "weights missing on rank 1", lambda: set_up(
        {"greenpc_weights": only(1, missing, WEIGHTS), "greenpc_format": "sparse"})
    yield "weights truncated on the last rank", lambda: set_up(
        {"greenpc_weights": only(LAST, truncated, WEIGHTS), "greenpc_format": "sparse"})
    yield "bad point on rank 0", lambda: set_up(closed, coordinates=bad_first_point)
    yield "zero boundary diagonal on the last rank", lambda: set_up(
        {**closed, "greenpc_format": "sparse"}, form="boundary", change=zero_last_boundary_diagonal)
    for name, options in FORMATS.items():
        yield f"non-finite kernel on the last rank ({name})", lambda options=options: set_up(
            options, Shifted(bad=lambda x, y: x > 0.9))
    for name, options in FORMATS.items():
        for rank in sorted({0, LAST}):
            yield f"non-finite from the k-th kernel call on rank {rank} ({name})", \
                lambda options=options, rank=rank: sweep(options, rank)
    patches = [(geometry, "local_coordinates", "sparse"), (context, "make_layout", "sparse"),
               (formats, "sparse_pattern", "sparse"), (formats, "hmatrix_plan", "hmatrix"),
               (formats, "decay_ratio", "auto"), (hmatrix, "build", "hmatrix"),
               (scaling, "off_diagonal_pairs", "sparse")]
    for module, name, kind in patches:
        yield f"TypeError in {name} on the last rank", lambda module=module, name=name, kind=kind: \
            patched(module, name, kind)


def patched(module, name, kind):
    with Raise(module, name, LAST):
        return set_up({"greenpc_kernel": "shifted1d", "greenpc_param": "k2=20", **FORMATS[kind]})


def sweep(options, rank):
    """NaN from the k-th kernel call on ``rank``, k = 0, 1, ... until the set-up succeeds.

    Returns the texts of the first failing attempt and, in ``ATTEMPTS``, how many attempts failed;
    every attempt's texts must agree across ranks (checked here, reported as a mismatch otherwise)."""
    first = None
    for k in count():
        text = set_up(options, Shifted(fail_at=only(rank, k, -1)))
        texts = COMM.tompi4py().allgather(text)
        if all(t is None for t in texts):
            ATTEMPTS[options["greenpc_format"], rank] = k
            return first
        if len(set(texts)) != 1:
            return f"attempt {k}: ranks disagree: {texts}"
        first = first or text


ATTEMPTS = {}


def good_solve():
    problem = problems.get("shifted1d")
    grid = problems.Grid(1, 48)
    da, A = dmda.build(problem, grid, {"k2": 20.0})
    with pushed_options({"pc_type": "python", "pc_python_type": "greenpc.GreenPC",
                         "greenpc_weights": WEIGHTS, "greenpc_format": "hmatrix"}):
        from greenpc.driver import solve_with

        return solve_with(A, da, grid, [0], "greenpc", COMM)["reasons"][0]


def main():
    results = {}
    for name, scenario in scenarios():
        attempts_before = dict(ATTEMPTS)
        texts = COMM.tompi4py().allgather(scenario())
        added = {k: v for k, v in ATTEMPTS.items() if k not in attempts_before}
        results[name] = {"texts": texts, "attempts": next(iter(added.values()), None)}
    results["solve"] = COMM.tompi4py().allgather(good_solve())
    if RANK == 0:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
