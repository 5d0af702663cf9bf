"""The solve driver (examples/solve.py) with a fault on one rank only: the job must end, with an error.

    mpiexec -n 3 python tests/scripts/fault_solve.py RANK OPTION VALUE [driver options...]

On rank RANK the option -OPTION is VALUE (e.g. a weight file only that rank cannot read); everything
else is the driver's, from the command line. Every rank should raise the same GreenPCError, so the
script ends with an uncaught exception on every rank and mpiexec ends the job.
"""
import sys

import petsc4py

rank_arg, option, value = sys.argv[1:4]
petsc4py.init(sys.argv[:1] + sys.argv[4:])
from petsc4py import PETSc  # noqa: E402

from greenpc.driver import main  # noqa: E402

if PETSc.COMM_WORLD.getRank() == int(rank_arg):
    PETSc.Options().setValue(option, value)
main()
