"""greenpc with -greenpc_smooth_its against PETSc's multiplicative PCCOMPOSITE of greenpc and PCSOR.

Prints the largest relative difference of the two PCs' actions on one right-hand side (the same global
values on any number of ranks): ``python smoothing_compare.py ITS OMEGA``.
"""
import sys

import petsc4py

petsc4py.init(sys.argv[:1])
from petsc4py import PETSc  # noqa: E402
import numpy as np  # noqa: E402

from greenpc import problems  # noqa: E402
from greenpc.driver import pushed_options  # noqa: E402
from greenpc.problems import dmda  # noqa: E402

its, omega = sys.argv[1], sys.argv[2]
KERNEL = {"greenpc_kernel": "helmholtz2d", "greenpc_param": "k2=100", "greenpc_format": "dense"}
da, A = dmda.build(problems.get("helmholtz2d"), problems.Grid(2, 24), {"k2": 100.0})
start, end = A.getOwnershipRange()
b = A.createVecLeft()
b.setArray(np.random.default_rng(3).uniform(-0.5, 0.5, A.getSize()[0])[start:end])


def action(options):
    ksp = PETSc.KSP().create(A.getComm())
    ksp.setOperators(A)
    ksp.setDM(da)
    ksp.setDMActive(PETSc.KSP.DMActive.ALL, False)
    with pushed_options(options):
        ksp.setFromOptions()
        ksp.setUp()
    y = b.duplicate()
    ksp.getPC().apply(b, y)
    return y


smoothed = action({"pc_type": "python", "pc_python_type": "greenpc.GreenPC", **KERNEL,
                   "greenpc_smooth_its": its, "greenpc_smooth_omega": omega})
composite = action({"pc_type": "composite", "pc_composite_type": "multiplicative",
                    "pc_composite_pcs": "python,sor", "sub_0_pc_python_type": "greenpc.GreenPC",
                    **{f"sub_0_{k}": v for k, v in KERNEL.items()},
                    "sub_1_pc_sor_its": its, "sub_1_pc_sor_omega": omega})
difference = smoothed.copy()
difference.axpy(-1.0, composite)
PETSc.Sys.Print(f"relative difference {difference.norm(PETSc.NormType.INFINITY) / composite.norm(PETSc.NormType.INFINITY):.3e}")
