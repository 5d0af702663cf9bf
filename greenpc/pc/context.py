"""GreenPC: the python PC context (``-pc_type python -pc_python_type greenpc.GreenPC``).

It adapts; the work happens in PETSc-free modules (kernels, hmatrix) and the small PETSc helpers of this
package. Set-up on every rank: read the kernel (weight file or closed form), find the geometry of the
local rows, build the kernel matrix on this rank's rows in the chosen format, fit it to the operator
(scale, boundary rows, diagonal). ``apply`` is one product with the assembled matrices, optionally
followed by SOR sweeps on its residual (``smoothing``).

Options (prefix-aware, see ``greenpc.pc.options.SPECS`` for the full table with defaults):
-greenpc_weights, -greenpc_kernel, -greenpc_param, -greenpc_precision, -greenpc_gate_tol, -greenpc_format,
-greenpc_dense_max, -greenpc_decay_tol, -greenpc_decay_radius, -greenpc_decay_rows, -greenpc_sparse_nnz,
-greenpc_sparse_radius, -greenpc_hmat_leaf_size, -greenpc_hmat_eta, -greenpc_hmat_compressor,
-greenpc_hmat_cheb_order, -greenpc_hmat_rank, -greenpc_hmat_rank_rule, -greenpc_hmat_tol,
-greenpc_hmat_max_rank, -greenpc_hmat_rank_samples, -greenpc_check_samples, -greenpc_check_tol,
-greenpc_check_fallback, -greenpc_memory_max, -greenpc_symmetric, -greenpc_wall_correction,
-greenpc_diagonal_fit, -greenpc_scale, -greenpc_scale_vectors, -greenpc_smooth_its,
-greenpc_smooth_omega, -greenpc_seed, -greenpc_view_partition.
"""
import hashlib
import math
import time

import numpy as np
from petsc4py import PETSc

from .. import models
from ..kernels import Kernel, closed_form
from ..kernels.base import Symmetrized, Wrapped
from ..kernels.walls import WallCorrected
from ..options import help_text, read
from . import collective, formats, geometry, scaling, smoothing
from .layout import make_layout
from .options import SPECS, parse_params

MIB = float(1 << 20)
# options that a later set-up applies without rebuilding the kernel matrix
REFIT_ONLY = ("scale", "scale_vectors", "smooth_its", "smooth_omega")
EVENTS = {name: PETSc.Log.Event(f"GreenPC{name}") for name in
          ("SetUp", "KernelEval", "WallTable", "Assembly", "Fit", "Apply")}


class LoggedKernel(Wrapped):
    """Kernel evaluations inside the GreenPCKernelEval event (for -log_view)."""

    def _evaluate(self, x, y):
        EVENTS["KernelEval"].begin()
        try:
            return self.inner._evaluate(x, y)
        finally:
            EVENTS["KernelEval"].end()


def make_kernel(opts):
    """The kernel chosen by -greenpc_weights or -greenpc_kernel, with its parameters."""
    params = parse_params(opts["param"])
    if bool(opts["weights"]) == bool(opts["kernel"]):
        raise ValueError("give exactly one of -greenpc_weights FILE|MODEL and -greenpc_kernel NAME "
                         f"(got weights={opts['weights']!r}, kernel={opts['kernel']!r})")
    if opts["kernel"]:
        return closed_form(opts["kernel"], params), None
    from .. import weights
    from ..kernels.learned import LearnedKernel

    model = weights.load(models.resolve(opts["weights"]))
    return LearnedKernel(model, params, opts["precision"], gate_tol=opts["gate_tol"]), model


class GreenPC:
    """The greenpc preconditioner: M ~ A^{-1} from a learned (or closed-form) Green's function."""

    def __init__(self, kernel: Kernel = None):
        self.given_kernel = kernel
        self.opts = None
        self.kernel = self.model = None
        self.op = None
        self.fit = None
        self.layout = None
        self.key = None
        self.k_diagonal = None
        self.fit_pairs = None
        self.smoother = None
        self.report = {}
        self.calls = {"setUp": 0, "apply": 0, "applyTranspose": 0}

    # -- options ---------------------------------------------------------------------------------
    @staticmethod
    def prefix(pc):
        return (pc.getOptionsPrefix() or "") + "greenpc_"

    def create(self, pc):
        geometry.accept_pc_coordinates(pc)  # PCPYTHON alone ignores PCSetCoordinates

    def setFromOptions(self, pc):
        prefix = self.prefix(pc)
        if PETSc.Options().hasName("help"):
            PETSc.Sys.Print(help_text(SPECS, prefix, "GreenPC options (greenpc.GreenPC):"),
                            comm=pc.getComm())
        self.opts = collective.run(pc.getComm(), read, SPECS, prefix)

    # -- set-up ----------------------------------------------------------------------------------
    def setUp(self, pc):
        self.calls["setUp"] += 1
        EVENTS["SetUp"].begin()
        try:
            self._setup(pc)
        finally:
            EVENTS["SetUp"].end()

    def _setup(self, pc):
        comm = pc.getComm()
        if self.opts is None:
            self.opts = collective.run(comm, read, SPECS, self.prefix(pc))
        opts = self.opts
        amat, pmat = pc.getOperators()
        collective.run(comm, check_operator, amat, pmat)
        start_time = time.perf_counter()
        if self.kernel is None:
            kernel, self.model = (self.given_kernel, None) if self.given_kernel is not None else \
                collective.run(comm, make_kernel, opts)
            kernel = WallCorrected(kernel) if opts["wall_correction"] else kernel
            kernel = Symmetrized(kernel) if opts["symmetric"] else kernel
            self.kernel = LoggedKernel(kernel)
        n_local = pmat.getLocalSize()[0]
        local, source = collective.run(comm, geometry.local_coordinates, pc, n_local)
        collective.run(comm, self.kernel.check_points, local, "mesh point")
        key = hashlib.sha256(np.ascontiguousarray(local).tobytes() + repr(sorted(
            (k, v) for k, v in opts.items() if k not in REFIT_ONLY)).encode()).digest()
        if key != self.key or self.op is None:
            self._build(comm, local, n_local, source, pmat)
            self.key = key
        else:
            scaling.unscale(self.op, self.fit, self.k_diagonal)
        EVENTS["Fit"].begin()
        try:
            self.fit_pairs = collective.run(comm, fit_inputs, pmat, self.kernel, self.layout, opts,
                                            self.fit_pairs, self.op.known)
            self.op.known = None    # a re-fit reuses fit_pairs
            self.fit, self.fit_pairs = collective.run(comm, scaling.fit, self.op, amat, pmat, self.kernel,
                                              self.layout, opts, self.fit_pairs)
        finally:
            EVENTS["Fit"].end()
        self.set_smoothing(pc, opts["smooth_its"], opts["smooth_omega"])
        self.report["setup_s"] = time.perf_counter() - start_time

    def _build(self, comm, local, n_local, source, pmat):
        opts = self.opts
        if self.op is not None:
            self.op.destroy()
            self.op = None
        points = geometry.gather(comm, local)
        start, end = pmat.getOwnershipRange()
        self.layout = layout = collective.run(comm, make_layout, points, start, end,
                                              self.kernel.domain)
        if self.kernel.innermost().uses_spacing:
            self.kernel.innermost().spacing = layout.spacing
        # the wall table before the choice when the format is given (its memory plan evaluates the
        # kernel), after it when auto chooses
        if opts["format"] != "auto":
            self._tabulate_walls(comm, points, opts["format"] != "sparse")
        kind, reason, settings = collective.run(comm, self._choose, comm, layout)
        if kind != "sparse":
            settings.pop("pattern", None)
        if opts["format"] == "auto":
            self._tabulate_walls(comm, points, kind != "sparse")
        max_bytes = int(opts["memory_max"] * MIB)
        EVENTS["Assembly"].begin()
        try:
            self.op = collective.run(comm, self._assemble, kind, layout, comm, settings, max_bytes)
        finally:
            EVENTS["Assembly"].end()
        self.report.update(format=kind, reason=reason, geometry=source, points=layout.n,
                           boundary_points=int((~layout.interior).sum()),
                           spacing=layout.spacing)
        self._check_entries(comm)
        # the blocks were needed for the check only; the PETSc matrices hold the operator
        self.op.info.pop("hmatrix", None)
        weights = pmat.createVecRight()
        weights.setArray(layout.weights[layout.start:layout.end])
        self.op.scale_columns(weights)
        self.k_diagonal = self.op.near.createVecLeft()
        self.op.get_diagonal(self.k_diagonal)
        self.fit_pairs = None

    def _tabulate_walls(self, comm, points, needed):
        """With -greenpc_wall_correction, every wall value that a dense or H-matrix build needs, once,
        the columns shared between the ranks. Not for the sparse format: its pairs are near each other
        and need a few wall points each, which the kernel finds by itself (the table, (4N + 4) n pairs
        on an N x N grid, would cost more than the pattern's 29 n)."""
        walls = self.kernel.layer(WallCorrected)
        if walls is None:
            return
        if not needed:
            walls.discard()    # a table from other points (another spacing) must not serve these
            return
        EVENTS["WallTable"].begin()
        try:
            mpi = comm.tompi4py()
            share = collective.run(comm, walls.share, points, mpi.Get_rank(), mpi.Get_size())
            collective.run(comm, walls.install, share, mpi)
        finally:
            EVENTS["WallTable"].end()

    def _assemble(self, kind, layout, comm, settings, max_bytes):
        if kind == "dense":
            return formats.build_dense(self.kernel, layout, comm)
        if kind == "sparse":
            return formats.build_sparse(self.kernel, layout, comm, settings["radius"],
                                        self.opts["sparse_nnz"], settings.get("pattern"))
        return formats.build_hmatrix(self.kernel, layout, comm, settings, max_bytes)

    def _choose(self, comm, layout):
        """(format, why, settings): the format the same on every rank, decided from collective data;
        settings may hold this rank's sparse pattern (the build's, found for the memory check)."""
        opts = self.opts
        mpi = comm.tompi4py()
        limit = opts["memory_max"] * MIB
        radius = opts["sparse_radius"] or 3.0 * layout.spacing
        settings = {"radius": radius}
        needs = {}
        # the compressor the H-matrix takes, here and in the build (auto: by dimension and oscillation)
        compressor = formats.compressor_for(opts, layout.dim,
                                            formats.oscillates(self.kernel, opts["hmat_exact_split"]))

        def local_bytes(kind):
            if kind == "dense":
                return formats.dense_bytes(layout)
            if kind == "sparse":
                # kept for the build, which drops it when another format is chosen
                settings["pattern"] = formats.sparse_pattern(layout, radius)
                return formats.sparse_bytes(settings["pattern"])
            settings["exact_split"] = opts["hmat_exact_split"]
            rank = formats.exact_rank(self.kernel, settings["exact_split"], layout.dim)
            settings["hmatrix"] = formats.hmatrix_settings(layout, opts, compressor, rank)
            planned = formats.hmatrix_plan(layout, settings, self.kernel, limit)
            settings["hmatrix"]["planned"] = planned
            return planned.estimate_bytes()

        def need(kind):
            if kind not in needs:
                needs[kind] = mpi.allreduce(collective.run(comm, local_bytes, kind), op=_max())
            return needs[kind]

        def fits(kind):
            return need(kind) <= limit

        requested = opts["format"]
        if requested != "auto":
            if not fits(requested):
                smallest = min(("sparse", "hmatrix", "dense"), key=need)
                raise ValueError(f"-greenpc_memory_max {opts['memory_max']:g} MiB is too small for "
                                 f"-greenpc_format {requested} (needs {mib(need(requested))} "
                                 f"MiB per rank; the smallest format, {smallest}, needs "
                                 f"{mib(need(smallest))} MiB)")
            if requested == "hmatrix":
                need("hmatrix")
            return requested, "requested", settings
        if layout.n <= opts["dense_max"] and fits("dense"):
            small = f"auto: n = {layout.n} <= dense_max {opts['dense_max']}"
            interpolated = (self._interpolated_evaluations(comm, layout, settings)
                            if compressor == "chebyshev" and fits("hmatrix") else None)
            dense = len(layout.interior_ids) ** 2
            if interpolated is not None and interpolated < dense:
                # the same iterations as dense (conv2d, react2d, rotlap2d, poisson2d, helmholtz2d at
                # N = 32-64) from 2-7x fewer evaluations
                return "hmatrix", (f"{small}, and the Chebyshev H-matrix evaluates {interpolated} kernel "
                                   f"entries, dense {dense}"), settings
            return "dense", small, settings
        decay_radius = opts["decay_radius"] or radius
        ratio = mpi.allreduce(collective.run(comm, formats.decay_ratio, self.kernel, layout,
                                             decay_radius, opts["decay_rows"], opts["seed"]), op=_max())
        self.report["decay_ratio"] = ratio
        order = ("sparse", "hmatrix") if ratio < opts["decay_tol"] else ("hmatrix", "sparse")
        for kind in order:
            if fits(kind):
                return kind, (f"auto: eq. 42 decay {ratio:.2e} {'<' if ratio < opts['decay_tol'] else '>='}"
                              f" tol {opts['decay_tol']:g} at r = {decay_radius:.3g}"), settings
        raise ValueError(f"-greenpc_memory_max {opts['memory_max']:g} MiB is too small for any format "
                         f"(sparse needs {mib(need('sparse'))} MiB, hmatrix "
                         f"{mib(need('hmatrix'))} MiB per rank)")

    @staticmethod
    def _interpolated_evaluations(comm, layout, settings):
        """The kernel evaluations of the planned Chebyshev H-matrix on all ranks (its far blocks cost a
        known p^2d each, so it can stand in for dense before any evaluation)."""
        hm = settings["hmatrix"]
        local = collective.run(comm, hm["planned"].interpolation_evaluations, hm["order"] ** layout.dim)
        return comm.tompi4py().allreduce(local)

    def _check_entries(self, comm):
        """The a posteriori check of section 4 (H-matrix): mean relative error of sampled entries."""
        opts = self.opts
        if self.op.kind != "hmatrix" or opts["check_samples"] == 0:
            return
        hm = self.op.info["hmatrix"]
        local = collective.run(comm, lambda: hm.check(self.kernel, opts["check_samples"], opts["seed"])
                               if hm.shape[0] else 0.0)
        mpi = comm.tompi4py()
        error = mpi.allreduce(local * hm.shape[0]) / max(mpi.allreduce(hm.shape[0]), 1)
        self.report["check_error"] = error
        if opts["check_tol"] and error > opts["check_tol"]:
            fallback = opts["check_fallback"]
            message = (f"H-matrix a posteriori check failed: mean relative error {error:.2e} of "
                       f"{opts['check_samples']} sampled entries > -greenpc_check_tol "
                       f"{opts['check_tol']:g}")
            if fallback == "error":
                collective.agree(comm, ValueError(message + " (-greenpc_check_fallback dense|sparse "
                                                            "rebuilds instead)"))
            elif fallback != "none":
                self.op.destroy()
                settings = {"radius": opts["sparse_radius"] or 3.0 * self.layout.spacing}
                self.op = collective.run(comm, self._assemble, fallback, self.layout, comm, settings,
                                         int(opts["memory_max"] * MIB))
                self.report.update(format=fallback, reason=f"{message}; fell back to {fallback}")

    def set_smoothing(self, pc, its, omega=1.0):
        """Use ``its`` SOR sweeps after the kernel product from now on (as -greenpc_smooth_its would,
        without a new set-up): the same kernel matrix can be measured with and without them."""
        if self.smoother is not None:
            self.smoother.destroy()
        self.smoother = collective.run(pc.getComm(), smoothing.make, pc.getOperators()[1], its, omega)
        self.opts = {**self.opts, "smooth_its": its, "smooth_omega": omega}

    # -- apply -----------------------------------------------------------------------------------
    def apply(self, pc, x, y):
        self.calls["apply"] += 1
        EVENTS["Apply"].begin()
        self.op.mult(x, y)
        if self.smoother is not None:
            self.smoother.smooth(x, y)
        EVENTS["Apply"].end()

    def applyTranspose(self, pc, x, y):
        self.calls["applyTranspose"] += 1
        if self.smoother is not None:
            raise ValueError(f"greenpc: transpose solves are not supported with -greenpc_smooth_its "
                             f"{self.smoother.its} (the SOR sweeps have no transpose here; use 0)")
        EVENTS["Apply"].begin()
        self.op.multTranspose(x, y)
        EVENTS["Apply"].end()

    # -- reporting -------------------------------------------------------------------------------
    def summary(self):
        """What the PC built and measured (also in -ksp_view)."""
        if self.op is None:
            return {}
        out = dict(self.report)
        out.update(kernel=self.kernel.describe(), evaluations=self.kernel.evaluations,
                   entries_local=self.op.entries, bytes_local=self.op.bytes,
                   scale=self.fit.scale, diagonal_fit=self.fit.diagonal_fit,
                   preconditioned_residual=self.fit.quality)
        out.update({k: v for k, v in self.op.info.items() if k != "hmatrix"})
        walls = self.kernel.layer(WallCorrected)
        if walls is not None:
            out["wall_evaluations"] = walls.wall_evaluations
        if self.model is not None:
            out.update(weights=self.model.path, model_problem=self.model.problem["name"],
                       format_version=self.model.version)
        return out

    def view(self, pc, viewer):
        if viewer.getType() != PETSc.Viewer.Type.ASCII:
            return
        info = self.summary()
        if not info:
            viewer.printfASCII("  greenpc: not set up\n")
            return
        comm = pc.getComm().tompi4py()
        entries = comm.allreduce(self.op.entries)
        memory = comm.allreduce(self.op.bytes)
        lines = []
        if self.model is not None:
            lines.append(f"weights {info['weights']} (problem {info['model_problem']}, format "
                         f"version {info['format_version']})")
        lines += [f"kernel: {info['kernel']}",
                  f"format: {info['format']} ({info['reason']})",
                  f"geometry: {info['points']} points from the {info['geometry']}, "
                  f"{info['boundary_points']} on the boundary (diagonal rows), spacing "
                  f"{info['spacing']:.4g}",
                  f"scale s = {info['scale']:.6g}; diagonal fit {self._diagonal_fit_state(pc)}",
                  f"kernel evaluations (this rank): {info['evaluations']}",
                  f"stored entries: {entries} ({entries / max(info['points'], 1):.1f} per row), "
                  f"memory {memory / MIB:.2f} MiB, compression {info['points'] ** 2 / entries:.2f}x "
                  f"against dense",
                  f"preconditioned residual ||v - A M v|| / ||v|| on random v: "
                  f"{info['preconditioned_residual']:.3e}"]
        lines.append("smoothing: " + (self.smoother.describe() if self.smoother is not None else "none"))
        if "check_error" in info:
            lines.append(f"a posteriori check: mean relative entry error {info['check_error']:.3e}")
        if self.op.kind == "hmatrix":
            lines.append(f"H-matrix: {info['near_blocks']} near and {info['far_blocks']} far blocks, "
                         f"rank max {info['max_rank']} mean {info['mean_rank']:.1f}, leaf "
                         f"{info['leaf_size']}, eta {info['eta']:g}, compressor {info['compressor']}"
                         + (f" (order {info['order']}, one basis per cluster)"
                            if info["compressor"] == "chebyshev" else ""))
            if info["exact_rank"]:
                lines.append(f"H-matrix exact term: the kernel's resonant modes, rank {info['exact_rank']}, "
                             "beside the compressed network part (-greenpc_hmat_exact_split)")
            lines.append(f"H-matrix memory planned (this rank): {info['memory_estimate'] / MIB:.2f} MiB, "
                         f"{info['estimate_basis']}")
        if "decay_ratio" in info:
            lines.append(f"eq. 42 decay ratio: {info['decay_ratio']:.3e}")
        viewer.pushASCIITab()
        for line in lines:
            viewer.printfASCII(line + "\n")
        viewer.popASCIITab()

    def _diagonal_fit_state(self, pc):
        if self.fit.diagonal_fit:
            return "on"
        if not self.opts["diagonal_fit"]:
            return "off"
        kind = pc.getOperators()[1].getType()
        return (f"off (the Pmat, of type {kind}, gives no rows: only its diagonal and products "
                "are used)")

    def reset(self, pc):
        if self.op is not None:
            self.op.destroy()
        if self.smoother is not None:
            self.smoother.destroy()
        self.smoother = None
        self.op = self.fit = self.layout = self.key = self.fit_pairs = None

    def destroy(self, pc):
        self.reset(pc)


def check_operator(amat, pmat):
    rows, cols = pmat.getSize()
    if rows != cols:
        raise ValueError(f"the Pmat is {rows} x {cols}; greenpc needs a square operator")
    if np.iscomplexobj(np.zeros(1, dtype=PETSc.ScalarType)):
        raise ValueError("greenpc needs a real PETSc build (this one uses complex scalars)")
    if amat.getSize() != pmat.getSize():
        raise ValueError("the Amat is {} x {} but the Pmat is {} x {}; greenpc needs operators of the "
                         "same size".format(*amat.getSize(), *pmat.getSize()))


def fit_inputs(pmat, kernel, layout, opts, pairs, known=None):
    """The rank-local part of ``scaling.fit``: its diagonal checks and the kernel values at the Pmat's
    off-diagonal pattern, agreed on before the fit's collective products (a failure here on one rank
    must not leave the others in a MatMult)."""
    diag = pmat.createVecLeft()
    pmat.getDiagonal(diag)
    a_diag = diag.getArray(readonly=True)
    interior = layout.local_interior
    if np.any(a_diag[~interior] == 0):
        raise ValueError("a boundary row of the Pmat has a zero diagonal: cannot invert it")
    rows = scaling.local_rows(pmat) if opts["diagonal_fit"] else None
    if rows is None:
        return pairs
    if np.any(a_diag[interior] == 0):
        raise ValueError("the Pmat has a zero diagonal entry on an interior row: the diagonal fit "
                         "needs A_jj != 0 (use -greenpc_diagonal_fit 0)")
    return pairs if scaling.same_pattern(pairs, rows) else \
        scaling.off_diagonal_pairs(kernel, layout, rows, known)


def mib(nbytes):
    """``nbytes`` in MiB for a message, rounded up to two significant digits below 1 MiB (so a
    -greenpc_memory_max of that value is enough)."""
    value = nbytes / MIB
    digits = 1 if value >= 1 or value <= 0 else 1 - math.floor(math.log10(value))
    return f"{math.ceil(value * 10 ** digits) / 10 ** digits:.{digits}f}"


def _max():
    from mpi4py import MPI

    return MPI.MAX
