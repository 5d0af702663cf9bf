"""What the benchmarks run: greenpc's kernel and formats per problem, and what a set-up will cost.

greenpc uses the shipped model of a problem when there is one (``greenpc/models/``). A problem without
one gets a closed-form stand-in, labelled as such everywhere: the Green's function of the Laplacian of
the same dimension (``-greenpc_kernel poisson2d``), exact for Poisson and only an approximation of the
problem's own inverse, so its iterations say what the formats do with an exact kernel, not what a
trained model would reach.

A configuration whose kernel evaluations would take longer than the driver's budget is skipped with
the estimate as the reason: the count comes from the format (dense: n^2; sparse: the lattice points in
the sparse radius; H-matrix: the near field of the planned block partition plus ``ACA_RANK`` rows and
columns per far block), the rate from a probe of the kernel on this machine, all ranks at once.
"""
import time
from types import SimpleNamespace

import numpy as np
from mpi4py import MPI
from petsc4py import PETSc

from greenpc import models, problems
from greenpc.kernels import closed_form
from greenpc.options import read

GREENPC = {"pc_type": "python", "pc_python_type": "greenpc.GreenPC"}
FORMATS = {"dense": {"greenpc_format": "dense"}, "sparse": {"greenpc_format": "sparse"},
           # ACA at eta 0.7, the PC's defaults until 2026-12-02 (still its 1D default)
           "hmatrix": {"greenpc_format": "hmatrix", "greenpc_hmat_compressor": "aca"},
           # the H-matrix from the fewest evaluations measured, the PC's 2D default since 2026-12-02: only
           # touching leaves dense, far blocks interpolated at 4 x 4 Chebyshev points per cluster, each
           # cluster's basis stored once (recompressed per block to 1e-4 before 2026-12-02 06:00)
           "hmatrix-cheb": {"greenpc_format": "hmatrix", "greenpc_hmat_compressor": "chebyshev",
                            "greenpc_hmat_cheb_order": "4", "greenpc_hmat_eta": "1.5"}}
STAND_INS = {1: "poisson1d", 2: "poisson2d"}
#: rank assumed for an adaptive (ACA) far block when estimating evaluations; measured ranks of the
#: closed-form kernels at tolerance 1e-4 are 3-6
ACA_RANK = 8
#: sparse radius of the PC in mesh spacings (``-greenpc_sparse_radius 0``)
SPARSE_RADIUS_H = 3.0


class KernelChoice:
    """The kernel greenpc uses on a problem: a shipped model, or a labelled closed-form stand-in."""

    def __init__(self, problem, params=None, precision="single"):
        preset = problems.get(problem)
        self.problem, self.dim = problem, preset.dim
        self.params = preset.resolve(params)
        self.precision = precision
        self.learned = problem in models.names()
        if self.learned:
            from greenpc import weights

            self.model = weights.load(models.path(problem))
            trained = self.model.problem.get("trained_params", {})
            values = ",".join(f"{k}={self.params[k]!r}" for k in trained)
            self.options = {"greenpc_weights": problem, "greenpc_param": values,
                            "greenpc_precision": precision}
            self.name = f"learned {problem} model"
        else:
            self.model = None
            closed = STAND_INS[self.dim]
            self.options = {"greenpc_kernel": closed}
            self.name = (f"closed-form {closed} Green's function (exact)" if closed == problem else
                         f"STAND-IN: closed-form {closed} Green's function (no shipped {problem} "
                         "model)")
        self.stand_in = not self.learned and STAND_INS[self.dim] != problem
        self._kernel = None

    def kernel(self):
        """The kernel object itself (for probes); the PC builds its own from ``options``."""
        if self._kernel is None:
            if self.learned:
                from greenpc.kernels.learned import LearnedKernel

                trained = self.model.problem.get("trained_params", {})
                self._kernel = LearnedKernel(self.model, {k: self.params[k] for k in trained},
                                             self.precision)
            else:
                self._kernel = closed_form(STAND_INS[self.dim])
        return self._kernel

    def pc_options(self, fmt):
        return {**GREENPC, **self.options, **FORMATS[fmt]}

    def record(self):
        return {"kernel": self.name, "stand_in": self.stand_in, "options": self.options}


def interior_points(rng, count, dim, margin=0.02):
    return margin + (1.0 - 2.0 * margin) * rng.random((count, dim))


def probe(kernel, comm=None, pairs=1 << 16):
    """Evaluations per second of ``kernel`` on each rank, all ranks at once (the slowest rank's).

    Returns {"compile_s": the first (warm-up) call, "rate": evaluations/s per rank}.
    """
    comm = comm or PETSc.COMM_WORLD
    mpi = comm.tompi4py()
    rng = np.random.default_rng(1)
    x, y = interior_points(rng, pairs, kernel.dim), interior_points(rng, pairs, kernel.dim)
    start = time.perf_counter()
    kernel(x[:8], y[:8])
    compile_s = time.perf_counter() - start
    mpi.Barrier()
    start = time.perf_counter()
    kernel(x, y)
    rate = pairs / (time.perf_counter() - start)
    return {"compile_s": mpi.allreduce(compile_s, op=MPI.MAX),
            "rate": mpi.allreduce(rate, op=MPI.MIN)}


def lattice_neighbours(dim, radius):
    """Integer points within ``radius`` of the origin in Z^dim (the sparse pattern's row length)."""
    r = int(np.floor(radius))
    axes = np.meshgrid(*[np.arange(-r, r + 1)] * dim, indexing="ij")
    return int((sum(a.astype(float) ** 2 for a in axes) <= radius ** 2 + 1e-9).sum())


_PLANS = {}


def hmatrix_evaluations(dim, N, fmt="hmatrix"):
    """Estimated kernel evaluations of the H-matrix format ``fmt`` (its options in ``FORMATS`` over the
    PC's defaults) on the N^dim interior grid."""
    from greenpc import hmatrix
    from greenpc.pc import formats
    from greenpc.pc.options import SPECS

    if (dim, N, fmt) not in _PLANS:
        grid = problems.Grid(dim, N)
        points = grid.coordinates(grid.all_indices())
        opts = read(SPECS, "greenpc_", database=FORMATS[fmt])
        # the shipped models do not oscillate (a Helmholtz model's waves are its exact term)
        settings = formats.hmatrix_settings(SimpleNamespace(n=len(points), dim=dim), opts,
                                            formats.compressor_for(opts, dim))
        keys = ("leaf_size", "eta", "rank", "rank_rule", "max_rank")
        adaptive = settings["compressor"] == "aca"
        plan = hmatrix.plan(points, points, adaptive=adaptive,
                            **{k: settings[k] for k in keys if k in settings})
        if settings["compressor"] == "chebyshev":
            _PLANS[dim, N, fmt] = plan.interpolation_evaluations(settings["order"] ** dim)
        else:
            # ACA and Nystrom evaluate about rank + 1 rows and columns of each far block
            ranks = np.minimum(plan.ranks, ACA_RANK) if adaptive else plan.ranks
            per_far = (ranks + 1) * plan.partition.shapes("far").sum(axis=1)
            _PLANS[dim, N, fmt] = int(plan.partition.near_entries + per_far.sum())
    return _PLANS[dim, N, fmt]


def estimated_evaluations(fmt, dim, N):
    n = N ** dim
    if fmt == "dense":
        return n * n
    if fmt == "sparse":
        return n * lattice_neighbours(dim, SPARSE_RADIUS_H)
    return hmatrix_evaluations(dim, N, fmt)


def affordable(fmt, dim, N, rate, ranks, budget_s):
    """(run?, estimate dict) for a format under a kernel-time budget in seconds per set-up."""
    evaluations = estimated_evaluations(fmt, dim, N)
    seconds = evaluations / max(ranks, 1) / rate
    estimate = {"estimated_evaluations": evaluations, "estimated_kernel_s": seconds,
                "budget_s": budget_s}
    return seconds <= budget_s, estimate


def set_up_greenpc(choice, fmt, N, comm=None):
    """(ksp, A, da, grid, seconds): greenpc in format ``fmt`` set up on the problem's N^d grid.

    The caller destroys ksp, A and da. ``seconds`` is the KSP set-up alone (the slowest rank's).
    """
    from greenpc.driver import pushed_options
    from greenpc.problems import dmda

    comm = comm or PETSc.COMM_WORLD
    preset = problems.get(choice.problem)
    grid = problems.Grid(preset.dim, N)
    da, A = dmda.build(preset, grid, choice.params or None, "operator", comm)
    ksp = PETSc.KSP().create(comm)
    ksp.setOperators(A)
    ksp.setDM(da)
    ksp.setDMActive(PETSc.KSP.DMActive.ALL, False)
    with pushed_options(choice.pc_options(fmt)):
        ksp.setFromOptions()
    mpi = comm.tompi4py()
    mpi.Barrier()
    start = time.perf_counter()
    ksp.setUp()
    seconds = mpi.allreduce(time.perf_counter() - start, op=MPI.MAX)
    return ksp, A, da, grid, seconds
