"""Would a coarse-grid correction bring greenpc's sparse format within 10x of classical AMG? An experiment.

    python bench/two_level.py                          # bench/results/two_level_np1.json
    python bench/two_level.py -two_level_problems conv2d -two_level_sizes 128 -two_level_radii 1.5

greenpc's sparse format keeps the kernel within a few mesh spacings, so its iterations grow with N like
a one-level method's (conv2d, radius 1.5 h, two SOR sweeps: 46 iterations at N = 128, 195 at 256). The
usual remedy is a coarse-grid correction. This driver adds one, outside greenpc, as PETSc composes
preconditioners: a multiplicative PCCOMPOSITE of ``Aggregation`` (below: a Galerkin coarse solve on
c x c boxes of the DMDA's grid) and then greenpc's sparse format with SOR sweeps
(``-pc_composite_pcs python,python``), or then PCSOR alone. The control without the kernel answers the
question that matters: does the learned near field still earn its set-up once a coarse grid is there?

Each configuration is solved on the same matrix and right-hand sides in the paper's protocol (FGMRES(50),
rtol 1e-6, 3 right-hand sides), beside classical AMG and greenpc's sparse format without a coarse grid.
Time to solution is KSP set-up plus the solves (the kernel compiled in a warm-up before any timing); a
composite's sub-preconditioners are set up in its first apply, so only that total compares.
"""
import math
import os
import sys

import petsc4py

petsc4py.init(sys.argv)
import numpy as np  # noqa: E402
from petsc4py import PETSc  # noqa: E402

import candidates  # noqa: E402
import records  # noqa: E402
from greenpc import problems  # noqa: E402
from greenpc.driver import peer_options, pushed_options, solve_with  # noqa: E402
from greenpc.options import Option, fraction_or_zero, help_text, positive, read  # noqa: E402
from greenpc.problems import dmda  # noqa: E402

SPECS = (
    Option("problems", str, "conv2d,react2d,rotlap2d", "problems (presets with a shipped 2D model)"),
    Option("sizes", str, "128,256", "N: interior points per direction"),
    Option("radii", str, "0.5,1.5,3", "greenpc sparse radii in mesh spacings h (0.5: the diagonal only)"),
    Option("sweeps", int, 2, "symmetric SOR sweeps after greenpc's product, and of the PCSOR control",
           check=positive),
    Option("box", int, 4, "coarse aggregates are box x box grid points", check=positive),
    Option("smooth", float, 0.67, "prolongation smoothing weight omega: P = (I - omega D^-1 A) P0 "
           "(0: piecewise constant)", check=fraction_or_zero),
    Option("nrhs", int, 3, "right-hand sides per solve", check=positive),
    Option("out", str, records.RESULTS, "folder of the JSON results"),
)
AGGREGATION = (
    Option("box", int, 4, "aggregates of box x box grid points", check=positive),
    Option("smooth", float, 0.0, "prolongation smoothing weight omega (0: piecewise constant)",
           check=fraction_or_zero),
)


class Aggregation:
    """y = P (P^T A P)^{-1} P^T x, P from boxes of the PC's DMDA grid (2D), optionally smoothed once by
    weighted Jacobi. The coarse matrix is factored by LU (redundantly on several ranks); its KSP takes
    options with the prefix ``(pc prefix)aggregation_coarse_``."""

    def __init__(self):
        self.opts, self.P, self.Ac, self.coarse, self.work = None, None, None, None, None

    def setFromOptions(self, pc):
        prefix = (pc.getOptionsPrefix() or "") + "aggregation_"
        if PETSc.Options().hasName("help"):
            PETSc.Sys.Print(help_text(AGGREGATION, prefix, "Aggregation (bench/two_level.py):"))
        self.opts = read(AGGREGATION, prefix)

    def setUp(self, pc):
        if self.opts is None:
            self.setFromOptions(pc)
        self.reset(pc)
        A, da = pc.getOperators()[1], pc.getDM()
        if da is None or da.getDimension() != 2:
            raise ValueError("Aggregation needs the PC's DM to be a 2D DMDA (ksp.setDM)")
        box = self.opts["box"]
        (xs, xe), (ys, ye) = da.getRanges()
        mx, my = da.getSizes()[:2]
        ix, iy = np.meshgrid(np.arange(xs, xe), np.arange(ys, ye), indexing="xy")  # x fastest
        nbx, nby = math.ceil(mx / box), math.ceil(my / box)
        aggregate = (ix // box + (iy // box) * nbx).ravel().astype(PETSc.IntType)
        n_local, n = A.getLocalSize()[0], A.getSize()[0]
        P = PETSc.Mat().createAIJ(((n_local, n), (None, nbx * nby)), nnz=(1, 1), comm=A.getComm())
        P.setValuesCSR(np.arange(n_local + 1, dtype=PETSc.IntType), aggregate, np.ones(n_local))
        P.assemble()
        if self.opts["smooth"]:
            AP = A.matMult(P)
            scale = A.createVecLeft()
            A.getDiagonal(scale)
            scale.reciprocal()
            scale.scale(-self.opts["smooth"])
            AP.diagonalScale(scale, None)
            AP.axpy(1.0, P, structure=PETSc.Mat.Structure.DIFFERENT_NONZERO_PATTERN)
            scale.destroy()
            P.destroy()
            P = AP
        self.P, self.Ac = P, A.ptap(P)
        self.coarse = PETSc.KSP().create(comm=A.getComm())
        self.coarse.setOptionsPrefix((pc.getOptionsPrefix() or "") + "aggregation_coarse_")
        self.coarse.setType("preonly")
        cpc = self.coarse.getPC()
        cpc.setType("lu" if A.getComm().getSize() == 1 else "redundant")
        self.coarse.setOperators(self.Ac)
        self.coarse.setFromOptions()
        self.coarse.setUp()
        self.work = (self.Ac.createVecLeft(), self.Ac.createVecRight())

    def apply(self, pc, x, y):
        restricted, solution = self.work
        self.P.multTranspose(x, restricted)
        self.coarse.solve(restricted, solution)
        self.P.mult(solution, y)

    def view(self, pc, viewer):
        if self.P is None:
            return
        viewer.printfASCII(f"  Aggregation: {self.opts['box']} x {self.opts['box']} boxes, "
                           f"{self.Ac.getSize()[0]} coarse unknowns, prolongation smoothing "
                           f"{self.opts['smooth']:g}\n")
        self.coarse.view(viewer)

    def reset(self, pc):
        for obj in (self.P, self.Ac, self.coarse, *(self.work or ())):
            if obj is not None:
                obj.destroy()
        self.P = self.Ac = self.coarse = self.work = None

    def destroy(self, pc):
        self.reset(pc)


def configurations(choice, opts, N):
    """(label, options) of every configuration solved at N."""
    coarse = {"pc_type": "composite", "pc_composite_type": "multiplicative",
              "sub_0_pc_type": "python", "sub_0_pc_python_type": "__main__.Aggregation",
              "sub_0_aggregation_box": str(opts["box"]), "sub_0_aggregation_smooth": str(opts["smooth"])}
    sweeps = str(opts["sweeps"])
    out = [("amg", peer_options("amg", PETSc.COMM_WORLD.getSize())),
           (f"greenpc-sparse+sor{sweeps}", {**choice.pc_options("sparse"), "greenpc_smooth_its": sweeps}),
           (f"coarse+sor{sweeps}", {**coarse, "pc_composite_pcs": "python,sor", "sub_1_pc_sor_its": sweeps})]
    for radius in records.names(opts["radii"]):
        # greenpc's own options (no pc_type) under the second sub-PC's prefix
        sub = {**choice.options, **candidates.FORMATS["sparse"], "greenpc_smooth_its": sweeps,
               "greenpc_sparse_radius": repr(float(radius) / (N + 1))}
        out.append((f"coarse+greenpc-r{radius}h+sor{sweeps}",
                    {**coarse, "pc_composite_pcs": "python,python",
                     "sub_1_pc_python_type": "greenpc.GreenPC",
                     **{f"sub_1_{k}": v for k, v in sub.items()}}))
    return out


def main():
    opts = read(SPECS, "two_level_")
    comm = PETSc.COMM_WORLD
    results = records.Results(
        os.path.join(opts["out"], f"two_level_np{comm.getSize()}.json"), opts,
        "coarse-grid correction experiment", comm,
        protocol=f"FGMRES(50), rtol 1e-6, max 500 iterations, zero initial guess, {opts['nrhs']} "
                 "right-hand sides uniform in [-0.5, 0.5]", runs={})
    seeds = list(range(opts["nrhs"]))
    for problem in records.names(opts["problems"]):
        preset = problems.get(problem)
        choice = candidates.KernelChoice(problem)
        for N in [8] + records.integers(opts["sizes"]):         # N = 8: the warm-up, not recorded
            grid = problems.Grid(preset.dim, N)
            da, A = dmda.build(preset, grid, None, "operator", comm)
            row = {}
            for label, options in configurations(choice, opts, N):
                with pushed_options(options):
                    result = solve_with(A, da, grid, seeds, label, comm)
                row[label] = {k: result[k] for k in ("iterations", "converged", "mean", "setup_s",
                                                     "solve_s", "total_s")}
            A.destroy()
            da.destroy()
            if N == 8:
                continue
            amg = row["amg"]["total_s"]
            for label, run in row.items():
                run["to_amg"] = run["total_s"] / amg
                records.log(f"{problem} N={N} {label:28s} {run['mean']:6.1f} its  set-up + solve "
                            f"{run['total_s']:.3f} s  {run['to_amg']:.1f}x AMG"
                            f"{'' if run['converged'] else '  (F)'}")
            results.data["runs"].setdefault(problem, {})[str(N)] = row
            results.save()
    results.finish()


if __name__ == "__main__":
    main()
