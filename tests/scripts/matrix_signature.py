"""Print norms of a preset's distributed matrix and its product with a fixed vector (natural order)."""
import json
import sys

import petsc4py

petsc4py.init(sys.argv)
import numpy as np  # noqa: E402
from petsc4py import PETSc  # noqa: E402

from greenpc import problems  # noqa: E402
from greenpc.problems import dmda  # noqa: E402

name, N, form = sys.argv[1], int(sys.argv[2]), sys.argv[3]
problem = problems.get(name)
grid = problems.Grid(problem.dim, N, form)
params = {"theta": 0.3} if name == "rotlap2d" else {}
da, A = dmda.build(problem, grid, params)
index = dmda.owned_indices(da)
natural = grid.natural(index)
x = A.createVecRight()
x.setArray(np.sin(1.0 + natural))
y = A.createVecLeft()
A.mult(x, y)
comm = PETSc.COMM_WORLD.tompi4py()
values = comm.gather((natural, y.getArray().copy()), root=0)
norms = [A.norm(PETSc.NormType.FROBENIUS), A.norm(PETSc.NormType.INFINITY), A.norm(PETSc.NormType.NORM_1)]
coords = da.getCoordinates().getArray().reshape(-1, problem.dim)
ok = bool(np.allclose(coords, grid.coordinates(index)))
oks = comm.gather(ok, root=0)
if comm.rank == 0:
    product = np.zeros(grid.size)
    for nat, val in values:
        product[nat] = val
    print(json.dumps({"norms": norms, "product": product.tolist(), "coordinates_ok": all(oks)}))
