"""The main job (``make demo``): a model problem on 2 ranks, greenpc next to PETSc's preconditioners.

Uses the first shipped model in the order conv2d, react2d, react1d, conv1d: its problem is solved in the
paper's protocol with none, ILU, GAMG and greenpc (H-matrix or dense as -greenpc_format auto decides).
Without any shipped model it says so and runs the baselines only.

Then the regime greenpc is for: the strongly indefinite Helmholtz problem -lap u - 500 u on a 64 x 64
grid, where ILU, SOR, classical AMG, GAMG and GAMG on the shifted Laplacian all fail; greenpc runs
there with the closed-form Green's function (the exact kernel: what a learned model can at best reach;
``bench/helmholtz.py`` runs the shipped helmholtz2d model beside it).
"""
import sys

import petsc4py

petsc4py.init(sys.argv)
from petsc4py import PETSc  # noqa: E402

from greenpc import models  # noqa: E402
from greenpc.driver import main, pushed_options  # noqa: E402

SIZES = {"conv2d": 64, "react2d": 64, "react1d": 1024, "conv1d": 1024}

if __name__ == "__main__":
    shipped = [name for name in SIZES if name in models.names()]
    if shipped:
        name = shipped[0]
        options = {"problem": name, "N": str(SIZES[name]), "compare": "none,ilu,gamg,greenpc",
                   "greenpc_weights": name}
        PETSc.Sys.Print(f"greenpc demo: shipped model {name!r} ({models.path(name)})")
    else:
        options = {"problem": "conv2d", "N": "64", "compare": "none,ilu,gamg"}
        PETSc.Sys.Print("greenpc demo: no trained model is shipped yet (make train-all trains them): "
                        "running PETSc's baselines only")
    with pushed_options(options, override=False):
        main()
    PETSc.Sys.Print("\ngreenpc demo: -lap u - k2 u with k2 = 500 (strongly indefinite), greenpc with the "
                    "closed-form Green's function")
    helmholtz = {"problem": "helmholtz2d", "k2": "500", "N": "64",
                 "compare": "none,ilu,sor,gamg,amg,gamg-shifted,greenpc",
                 "greenpc_kernel": "helmholtz2d", "greenpc_param": "k2=500", "greenpc_format": "hmatrix"}
    with pushed_options(helmholtz):
        main()
