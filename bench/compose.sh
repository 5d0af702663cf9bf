#!/bin/bash
# Issue 7: greenpc alone and composed with one SOR / Jacobi sweep (multiplicative composite, greenpc
# first) on conv2d and react2d at N = 128 on 2 ranks, next to GAMG. Until 2D models are shipped greenpc
# uses the closed-form poisson2d kernel as a stand-in; with models, run e.g.
#   GREENPC="-greenpc_weights {problem} -greenpc_format hmatrix" bench/compose.sh
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
G0=${GREENPC:-"-greenpc_kernel poisson2d -greenpc_format hmatrix"}
for p in react2d conv2d; do
  G=${G0//\{problem\}/$p}
  run() { echo "== $p $1"; mpiexec --oversubscribe -n 2 .venv/bin/python examples/solve.py -problem $p -N 128 "${@:2}" 2>&1 | tail -1; }
  run alone -pc_type python -pc_python_type greenpc.GreenPC $G
  for s in sor jacobi; do
    run "+$s" -pc_type composite -pc_composite_type multiplicative -pc_composite_pcs python,$s \
      -sub_0_pc_python_type greenpc.GreenPC $(echo $G | sed 's/-greenpc/-sub_0_greenpc/g')
  done
  run gamg -pc_type gamg
done
