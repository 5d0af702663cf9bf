static char help[] = "Solves -div grad u = f on the unit square with a DMDA, Dirichlet rows kept.\n\
An ordinary PETSc code: greenpc reaches it through options alone (see README.md here).\n\
Options:\n\
  -pc_coordinates : also give the grid points to the PC with PCSetCoordinates, as GAMG users do\n\n";

/*
   In the style of PETSc's KSP tutorials ex29/ex50: the code assembles its own operator with
   MatSetValuesStencil, scaled by hx*hy as those tutorials do, keeps the boundary points in the system
   as identity rows scaled like the diagonal, and lets KSPSetFromOptions choose the solver. Nothing in
   it knows about greenpc:

     mpiexec -n 2 ./poisson2d -da_grid_x 65 -da_grid_y 65 -ksp_type fgmres -ksp_converged_reason \
       -python -pc_type python -pc_python_type greenpc.GreenPC -greenpc_kernel poisson2d

   The exact solution is u = sin(pi x) sin(pi y); the code prints the error against it.
*/
#include <petscdmda.h>
#include <petscksp.h>

static PetscErrorCode AssembleOperator(DM da, Mat A)
{
  DMDALocalInfo info;
  PetscReal     hx, hy, HxdHy, HydHx;
  MatStencil    row, col[5];
  PetscScalar   v[5];

  PetscFunctionBeginUser;
  PetscCall(DMDAGetLocalInfo(da, &info));
  hx    = 1.0 / (PetscReal)(info.mx - 1);
  hy    = 1.0 / (PetscReal)(info.my - 1);
  HxdHy = hx / hy;
  HydHx = hy / hx;
  for (PetscInt j = info.ys; j < info.ys + info.ym; j++) {
    for (PetscInt i = info.xs; i < info.xs + info.xm; i++) {
      row.i = i;
      row.j = j;
      if (i == 0 || j == 0 || i == info.mx - 1 || j == info.my - 1) {
        v[0] = 2.0 * (HxdHy + HydHx); /* Dirichlet row kept, scaled like the interior diagonal */
        PetscCall(MatSetValuesStencil(A, 1, &row, 1, &row, v, INSERT_VALUES));
        continue;
      }
      v[0] = -HxdHy; col[0].i = i;     col[0].j = j - 1;
      v[1] = -HydHx; col[1].i = i - 1; col[1].j = j;
      v[2] = 2.0 * (HxdHy + HydHx); col[2].i = i; col[2].j = j;
      v[3] = -HydHx; col[3].i = i + 1; col[3].j = j;
      v[4] = -HxdHy; col[4].i = i;     col[4].j = j + 1;
      PetscCall(MatSetValuesStencil(A, 1, &row, 5, col, v, INSERT_VALUES));
    }
  }
  PetscCall(MatAssemblyBegin(A, MAT_FINAL_ASSEMBLY));
  PetscCall(MatAssemblyEnd(A, MAT_FINAL_ASSEMBLY));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* b = hx hy f at interior points, 0 on the boundary; u = the exact solution at every point */
static PetscErrorCode FillRhsAndExact(DM da, Vec b, Vec u)
{
  DMDALocalInfo info;
  PetscScalar **barray, **uarray;
  PetscReal     hx, hy;

  PetscFunctionBeginUser;
  PetscCall(DMDAGetLocalInfo(da, &info));
  hx = 1.0 / (PetscReal)(info.mx - 1);
  hy = 1.0 / (PetscReal)(info.my - 1);
  PetscCall(DMDAVecGetArray(da, b, &barray));
  PetscCall(DMDAVecGetArray(da, u, &uarray));
  for (PetscInt j = info.ys; j < info.ys + info.ym; j++) {
    for (PetscInt i = info.xs; i < info.xs + info.xm; i++) {
      PetscReal x = i * hx, y = j * hy, exact = PetscSinReal(PETSC_PI * x) * PetscSinReal(PETSC_PI * y);
      PetscBool boundary = (PetscBool)(i == 0 || j == 0 || i == info.mx - 1 || j == info.my - 1);
      uarray[j][i] = boundary ? 0.0 : exact;
      barray[j][i] = boundary ? 0.0 : hx * hy * 2.0 * PETSC_PI * PETSC_PI * exact;
    }
  }
  PetscCall(DMDAVecRestoreArray(da, b, &barray));
  PetscCall(DMDAVecRestoreArray(da, u, &uarray));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The owned grid points, interlaced (x, y), in the DMDA's global order */
static PetscErrorCode SetPCCoordinates(DM da, PC pc)
{
  DMDALocalInfo info;
  PetscReal    *xy;
  PetscInt      k = 0;

  PetscFunctionBeginUser;
  PetscCall(DMDAGetLocalInfo(da, &info));
  PetscCall(PetscMalloc1(2 * info.xm * info.ym, &xy));
  for (PetscInt j = info.ys; j < info.ys + info.ym; j++) {
    for (PetscInt i = info.xs; i < info.xs + info.xm; i++) {
      xy[k++] = (PetscReal)i / (PetscReal)(info.mx - 1);
      xy[k++] = (PetscReal)j / (PetscReal)(info.my - 1);
    }
  }
  PetscCall(PCSetCoordinates(pc, 2, info.xm * info.ym, xy));
  PetscCall(PetscFree(xy));
  PetscFunctionReturn(PETSC_SUCCESS);
}

int main(int argc, char **argv)
{
  DM        da;
  Mat       A;
  Vec       b, x, exact;
  KSP       ksp;
  PC        pc;
  PetscInt  its, mx, my;
  PetscReal error;
  PetscBool pc_coordinates = PETSC_FALSE;

  PetscFunctionBeginUser;
  PetscCall(PetscInitialize(&argc, &argv, NULL, help));
  PetscCall(PetscOptionsGetBool(NULL, NULL, "-pc_coordinates", &pc_coordinates, NULL));
  PetscCall(DMDACreate2d(PETSC_COMM_WORLD, DM_BOUNDARY_NONE, DM_BOUNDARY_NONE, DMDA_STENCIL_STAR, 33, 33,
                         PETSC_DECIDE, PETSC_DECIDE, 1, 1, NULL, NULL, &da));
  PetscCall(DMSetFromOptions(da));
  PetscCall(DMSetUp(da));
  PetscCall(DMCreateMatrix(da, &A));
  PetscCall(AssembleOperator(da, A));
  PetscCall(DMCreateGlobalVector(da, &b));
  PetscCall(VecDuplicate(b, &x));
  PetscCall(VecDuplicate(b, &exact));
  PetscCall(FillRhsAndExact(da, b, exact));

  PetscCall(KSPCreate(PETSC_COMM_WORLD, &ksp));
  PetscCall(KSPSetOperators(ksp, A, A));
  PetscCall(KSPSetDM(ksp, da));
  PetscCall(KSPSetDMActive(ksp, KSP_DMACTIVE_ALL, PETSC_FALSE));
  PetscCall(KSPSetFromOptions(ksp));
  if (pc_coordinates) {
    PetscCall(KSPGetPC(ksp, &pc));
    PetscCall(SetPCCoordinates(da, pc));
  }
  PetscCall(KSPSolve(ksp, b, x));

  PetscCall(KSPGetIterationNumber(ksp, &its));
  PetscCall(VecAXPY(x, -1.0, exact));
  PetscCall(VecNorm(x, NORM_INFINITY, &error));
  PetscCall(DMDAGetInfo(da, NULL, &mx, &my, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "grid %" PetscInt_FMT " x %" PetscInt_FMT ": %" PetscInt_FMT
                        " iterations, max error %.3e\n", mx, my, its, (double)error));

  PetscCall(VecDestroy(&exact));
  PetscCall(VecDestroy(&x));
  PetscCall(VecDestroy(&b));
  PetscCall(MatDestroy(&A));
  PetscCall(KSPDestroy(&ksp));
  PetscCall(DMDestroy(&da));
  PetscCall(PetscFinalize());
  return 0;
}
