"""Post-smoothing of the kernel product: y = M b, then y += S (b - A y) with S symmetric SOR sweeps.

The learned kernel's error grows, relative to the operator, at the grid's highest frequencies, where a
local relaxation is cheap and effective: on helmholtz2d (k2 = 300, N = 256, H-matrix) the kernel alone
takes 22.3 FGMRES iterations and the kernel followed by two symmetric SOR sweeps 12.0. This is
PETSc's multiplicative PCCOMPOSITE of greenpc and PCSOR (``-pc_composite_pcs python,sor``) inside one PC,
applied with the Pmat as PCSOR and PCCOMPOSITE apply it: local (per-rank) sweeps, zero initial guess.
"""
from petsc4py import PETSc


class Smoother:
    """``its`` symmetric SOR sweeps with relaxation ``omega`` on the residual of the kernel product."""

    def __init__(self, pmat, its, omega):
        self.pmat, self.its, self.omega = pmat, int(its), float(omega)
        types = PETSc.Mat.SORType
        self.sortype = types.LOCAL_SYMMETRIC_SWEEP | types.ZERO_INITIAL_GUESS
        self.residual = pmat.createVecLeft()
        self.correction = pmat.createVecRight()

    def smooth(self, b, y):
        """y += S (b - A y), in place."""
        self.pmat.mult(y, self.residual)
        self.residual.aypx(-1.0, b)
        self.pmat.SOR(self.residual, self.correction, omega=self.omega, sortype=self.sortype,
                      its=self.its)
        y.axpy(1.0, self.correction)

    def describe(self):
        return (f"{self.its} symmetric SOR sweep{'s' if self.its != 1 else ''} (omega {self.omega:g}, "
                "local to each rank) on the residual after the kernel product")

    def destroy(self):
        self.residual.destroy()
        self.correction.destroy()


def make(pmat, its, omega):
    """The smoother of -greenpc_smooth_its / -greenpc_smooth_omega, or None when its is 0."""
    if its == 0:
        return None
    kind = pmat.getType()
    if "aij" not in kind and "dense" not in kind:  # (s)baij too
        raise ValueError(f"-greenpc_smooth_its {its}: SOR sweeps need the Pmat's entries, and the Pmat "
                         f"is of type {kind} (use -greenpc_smooth_its 0)")
    return Smoother(pmat, its, omega)
