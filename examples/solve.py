"""Solve one of greenpc's model problems with FGMRES, in the paper's protocol.

    mpiexec -n 2 python examples/solve.py -problem conv2d -N 128 -pc_type gamg
    python examples/solve.py -problem react1d -N 512 -pc_type python -pc_python_type greenpc.GreenPC \
        -greenpc_weights react1d
    python examples/solve.py -problem conv2d -N 64 -compare none,ilu,gamg,greenpc

Every setting is a PETSc option; -help lists them.
"""
import sys

import petsc4py

petsc4py.init(sys.argv)

from greenpc.driver import main  # noqa: E402

if __name__ == "__main__":
    main()
