"""Classical (Ruge-Stuben) AMG from pyamg as a PETSc preconditioner: one V-cycle per apply.

    -pc_type python -pc_python_type greenpc.amg.ClassicalAMG

hypre's BoomerAMG cannot be built here; classical AMG is what a hypre user would run, so the benchmarks
(``bench/solve.py``) set greenpc beside this peer. The hierarchy is pyamg's ``ruge_stuben_solver`` on
the Pmat (classical strength of connection, RS splitting, classical interpolation, symmetric
Gauss-Seidel smoothing); ``apply`` runs one cycle from a zero initial guess.

On more than one rank, ``-amg_parallel`` says what happens:

- ``gather`` (default): the Pmat is gathered to rank 0, which builds the serial hierarchy; each apply
  gathers the vector to rank 0, cycles there and scatters the result back. Iterations are those of the
  serial AMG; the AMG work is not parallel (the other ranks wait).
- ``block``: block Jacobi with one AMG hierarchy per rank on its diagonal block of the Pmat; parallel
  work, but the iterations grow with the number of ranks.

Options (prefix-aware: ``(pc prefix) + "amg_"``): ``-amg_strength_theta`` (0.25), ``-amg_max_coarse``
(10), ``-amg_max_levels`` (30), ``-amg_cycle`` (V, W or F), ``-amg_parallel`` (gather or block).
"""
import numpy as np
from petsc4py import PETSc

from .options import Option, fraction, help_text, positive, read

SPECS = (
    Option("strength_theta", float, 0.25, "classical strength-of-connection threshold",
           check=fraction),
    Option("max_coarse", int, 10, "largest coarsest level (solved with a pseudo-inverse)",
           check=positive),
    Option("max_levels", int, 30, "most levels of the hierarchy", check=positive),
    Option("cycle", "choice", "v", "multigrid cycle of one apply", choices=("v", "w", "f")),
    Option("parallel", "choice", "gather", "on several ranks: gather to rank 0 (serial AMG), or "
           "block Jacobi with one AMG per rank", choices=("gather", "block")),
)
EVENTS = {name: PETSc.Log.Event(f"ClassicalAMG{name}") for name in ("SetUp", "Apply")}


def hierarchy(matrix, opts):
    """pyamg's Ruge-Stuben hierarchy of a scipy CSR matrix."""
    try:
        import pyamg
    except ImportError:
        raise ImportError("greenpc.amg.ClassicalAMG needs pyamg (pip install pyamg)") from None
    return pyamg.ruge_stuben_solver(matrix, strength=("classical", {"theta": opts["strength_theta"]}),
                                    max_coarse=opts["max_coarse"], max_levels=opts["max_levels"])


def local_csr(mat, diagonal_block=False):
    """This rank's rows of ``mat`` as scipy CSR (global columns, or only the diagonal block)."""
    import scipy.sparse as sp

    indptr, indices, values = mat.getValuesCSR()
    start, end = mat.getOwnershipRange()
    n_rows, n_cols = end - start, mat.getSize()[1]
    local = sp.csr_matrix((values, indices, indptr), shape=(n_rows, n_cols))
    if diagonal_block:
        local = local[:, start:end].tocsr()
    return local


def gathered_csr(mat):
    """The whole ``mat`` as scipy CSR on rank 0 (None elsewhere)."""
    import scipy.sparse as sp

    local = local_csr(mat)
    parts = mat.getComm().tompi4py().gather(local, root=0)
    return None if parts is None else sp.vstack(parts, format="csr")


class ClassicalAMG:
    """The python PC context: a pyamg Ruge-Stuben hierarchy, applied as one cycle."""

    def __init__(self):
        self.opts = None
        self.solver = None  # pyamg MultilevelSolver (on rank 0 only when gathering)
        self.scatter = self.x_zero = self.y_zero = None
        self.mode = "serial"

    @staticmethod
    def prefix(pc):
        return (pc.getOptionsPrefix() or "") + "amg_"

    def setFromOptions(self, pc):
        if PETSc.Options().hasName("help"):
            PETSc.Sys.Print(help_text(SPECS, self.prefix(pc), "ClassicalAMG options "
                                                               "(greenpc.amg.ClassicalAMG):"),
                            comm=pc.getComm())
        self.opts = read(SPECS, self.prefix(pc))

    def setUp(self, pc):
        EVENTS["SetUp"].begin()
        try:
            self._setup(pc)
        finally:
            EVENTS["SetUp"].end()

    def _setup(self, pc):
        if self.opts is None:
            self.opts = read(SPECS, self.prefix(pc))
        self.reset(pc)
        _, pmat = pc.getOperators()
        comm = pmat.getComm()
        if comm.getSize() == 1 or self.opts["parallel"] == "block":
            self.mode = "serial" if comm.getSize() == 1 else "block"
            self.solver = hierarchy(local_csr(pmat, diagonal_block=True), self.opts)
            return
        self.mode = "gather"
        matrix = gathered_csr(pmat)
        error = None
        if comm.getRank() == 0:
            try:
                self.solver = hierarchy(matrix, self.opts)
            except Exception as err:  # every rank must learn of it before the next collective
                error = f"{type(err).__name__}: {err}"
        error = comm.tompi4py().bcast(error, root=0)
        if error:
            raise RuntimeError(f"ClassicalAMG: building the hierarchy on rank 0 failed: {error}")
        self.x_zero = pmat.createVecRight()
        self.scatter, self.y_zero = PETSc.Scatter.toZero(self.x_zero)

    def _cycle(self, b):
        """One cycle from x = 0. pyamg's public ``solve`` adds two finest-level residual norms per call
        (a sizeable part of a cycle, and a BLAS call that stalls on a loaded machine), so the cycle
        itself is called when this pyamg has it."""
        cycle = self.opts["cycle"].upper()
        solver = self.solver
        if len(solver.levels) == 1 or not hasattr(solver, "_MultilevelSolver__solve"):
            return solver.solve(b, maxiter=1, cycle=cycle, tol=1e-300)
        x = np.zeros_like(b)
        solver._MultilevelSolver__solve(0, x, np.ascontiguousarray(b), cycle)
        return x

    def apply(self, pc, x, y):
        EVENTS["Apply"].begin()
        try:
            if self.mode != "gather":
                y.setArray(self._cycle(x.getArray(readonly=True)))
                return
            forward, reverse = PETSc.ScatterMode.FORWARD, PETSc.ScatterMode.REVERSE
            insert = PETSc.InsertMode.INSERT_VALUES
            self.scatter.scatter(x, self.y_zero, insert, forward)
            if pc.getComm().getRank() == 0:
                self.y_zero.setArray(self._cycle(self.y_zero.getArray(readonly=True)))
            self.scatter.scatter(self.y_zero, y, insert, reverse)
        finally:
            EVENTS["Apply"].end()

    def summary(self):
        """Hierarchy figures (from rank 0 when gathering; this rank's block otherwise)."""
        if self.solver is None:
            return {"mode": self.mode}
        return {"mode": self.mode, "levels": len(self.solver.levels),
                "operator_complexity": float(self.solver.operator_complexity()),
                "grid_complexity": float(self.solver.grid_complexity()),
                "unknowns": [int(level.A.shape[0]) for level in self.solver.levels]}

    def view(self, pc, viewer):
        if viewer.getType() != PETSc.Viewer.Type.ASCII:
            return
        info = pc.getComm().tompi4py().bcast(self.summary(), root=0)
        viewer.pushASCIITab()
        how = {"serial": "serial", "gather": "gathered to rank 0 (serial AMG, other ranks wait)",
               "block": "block Jacobi, one hierarchy per rank (rank 0's shown)"}[info["mode"]]
        viewer.printfASCII(f"pyamg Ruge-Stuben AMG, one {self.opts['cycle'].upper()}-cycle per apply; "
                           f"{how}\n")
        if "levels" in info:
            viewer.printfASCII(f"levels {info['levels']}, unknowns {info['unknowns']}, operator "
                               f"complexity {info['operator_complexity']:.3f}, grid complexity "
                               f"{info['grid_complexity']:.3f}\n")
        viewer.popASCIITab()

    def reset(self, pc):
        for obj in (self.scatter, self.x_zero, self.y_zero):
            if obj is not None:
                obj.destroy()
        self.solver = self.scatter = self.x_zero = self.y_zero = None

    def destroy(self, pc):
        self.reset(pc)

