# greenpc: `make demo` runs the main job, `make test` the test suite; each sets everything up first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.greenpc-setup
PETSC_VERSION := 3.26.1
PETSC_CONFIGURE_OPTIONS := --with-cuda=0 --with-fc=0 --with-x=0 COPTFLAGS=-O2 CXXOPTFLAGS=-O2
DEPS := numpy scipy jax flax optax safetensors matplotlib tqdm pytest hypothesis mpi4py pyamg
NP ?= 2

# OpenMPI refuses root without these; --oversubscribe lets 2-4 ranks share these 2 cores.
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
export OMPI_MCA_rmaps_base_oversubscribe := 1
export PRTE_MCA_rmaps_default_mapping_policy := :oversubscribe
MPIEXEC := mpiexec --oversubscribe

.PHONY: all setup demo test paper train-all clean-venv bench

all: demo

setup: $(STAMP)

# Debian's OpenMPI and BLAS/LAPACK when mpicc is missing, then a virtual environment with PETSc and
# petsc4py built from PyPI sources (about 22 minutes the first time; pip caches the built wheels).
$(STAMP): pyproject.toml
	@if ! command -v mpicc >/dev/null; then \
	  echo "== installing OpenMPI and BLAS/LAPACK from Debian"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    libopenmpi-dev openmpi-bin liblapack-dev libblas-dev; \
	fi
	@command -v mpicc >/dev/null || { echo "mpicc not found: install libopenmpi-dev openmpi-bin"; exit 1; }
	[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	@echo "== building PETSc $(PETSC_VERSION) and petsc4py (about 22 minutes the first time)"
	PETSC_CONFIGURE_OPTIONS="$(PETSC_CONFIGURE_OPTIONS)" $(PY) -m pip install petsc==$(PETSC_VERSION)
	PETSC_CONFIGURE_OPTIONS="$(PETSC_CONFIGURE_OPTIONS)" $(PY) -m pip install petsc4py==$(PETSC_VERSION)
	$(PY) -m pip install -q $(DEPS)
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(MPIEXEC) -n $(NP) $(PY) examples/demo.py

test: $(STAMP)
	$(PY) -m pytest -q tests

# The paper's experiments (section 5) from the shipped models: JSON, plots, README tables.
paper: $(STAMP)
	$(PY) bench/paper.py -paper_jobs $(NP) -paper_readme README.md

# Train the shipped models with the paper's settings, one target each (`make train-react2d`); hours on
# 2 cores. Every run writes greenpc/models/NAME.gpc.ckpt as it goes and -train_resume continues from it,
# so a committed checkpoint lets a later session finish an interrupted run; a finished run's checkpoint
# resumes at its last step and only rewrites the model. conv1d/conv2d keep the anchor weight at 1: with
# the paper's decay to 0.1 the network traded conv1d's boundary layer for a tilt (47% error against 5%).
TRAIN := $(PY) -m greenpc.train -train_resume -train_threads 1
MODELS := greenpc/models
ROTLAP_ANCHORS := theta=0:0.7853981633974483:1.5707963267948966:2.356194490192345
SHIPPED := react1d conv1d react2d conv2d rotlap2d
TRAIN_ARGS_react1d :=
TRAIN_ARGS_conv1d := -train_aux_weight_final 1
TRAIN_ARGS_react2d :=
TRAIN_ARGS_conv2d := -train_aux_weight_final 1
# rotlap2d learns R = G - S with S the operator's free-space kernel in closed form (-train_free_space,
# problems/freespace.py): R solves L R = 0, so there is no source to learn and one epsilon stage does.
# Before, with the paper's residual (scaled by the source's peak), the network did not satisfy the PDE
# away from the source (96 H-matrix iterations at theta = 0, none converged at 0.39, N = 96, after 40k
# steps), and with the relative one it never learned the source. In 3000-step trials the split gave
# 15 / 14 dense iterations at N = 32 (theta = 0 / 0.39) against 64 / 51 with the paper's residual
TRAIN_ARGS_rotlap2d := -xi 0.1 -train_param theta=0:3.141592653589793:periodic \
  -train_anchor_params $(ROTLAP_ANCHORS) -train_width_scale 2 -train_batch_scale 2 \
  -train_free_space 1 -train_epsilons 0.01 -train_widths 10 -train_epochs 2000 -train_subdomains 1
ROTLAP_FINETUNE := -xi 0.1 -train_param theta=0:3.141592653589793:periodic \
  -train_anchor_params $(ROTLAP_ANCHORS) -train_width_scale 2 -train_batch_scale 2 \
  -train_free_space 1 -train_epsilons 0.01 -train_widths 10 -train_epochs 1000 -train_subdomains 1 \
  -train_init rotlap2d -train_lr 5e-4 -train_lr_final 5e-5
# issue 10: one model for -lap u - k2 u over k2 in [50, 1000]. G has a pole in k2 at every Laplacian
# eigenvalue pi^2 |m|^2 (68 in this range in 2D, 8 in 1D), so -train_modes splits the near-resonant
# eigenmodes off in closed form and the network learns the pole-free rest. 1D, 24.5k steps: 4-48% kernel
# error and 13-18 H-matrix iterations at N=256 for k2 = 100..1000, against 20-104% and 44 / ~400
# iterations (k2 = 300 / 1000) without the split. helmholtz1d is that run; helmholtz2d is part-trained
# (its committed checkpoint resumes).
TRAIN_ARGS_helmholtz1d := -train_param k2=50:1000 -train_anchor_params k2=50:200:400:700:1000 \
  -train_modes 100 -train_epochs 200,200,300,500
# helmholtz2d keeps every mode under k2 in the split part (-train_modes_window below): with the symmetric
# window the network has to learn some 30 oscillating modes far below k2, and a run with it gave 77 dense
# iterations at N = 64, k2 = 1000 after 40k steps, where this one gave 26.7 after 7.7k
TRAIN_ARGS_helmholtz2d := -train_param k2=50:1000 -train_anchor_params k2=50:200:400:700:1000 \
  -train_modes 100 -train_modes_window below -train_width_scale 2 -train_batch_scale 2 \
  -train_epochs 1000,1000,1000,1000
# the same 1D family in a heterogeneous medium (a Gaussian inclusion, n^2 = 1 + exp(-|x - 1/2|^2 / 0.045)):
# the split-off modes are those of -lap phi = mu n^2 phi (problems/modes.py, a sine-Galerkin solve)
.PHONY: train-helmholtz1d-gauss
train-helmholtz1d-gauss: $(STAMP)
	$(TRAIN) -problem helmholtz1d -gauss 1 -train_output $(MODELS)/helmholtz1d-gauss.gpc $(TRAIN_ARGS_helmholtz1d)
# the 2D family in the Gaussian inclusion, fine-tuned from helmholtz2d (-train_init: only the DD stage
# runs, from helmholtz2d's network, 4000 steps). In 1D, 2000 such steps from helmholtz1d matched the
# from-scratch helmholtz1d-gauss's kernel error (10.6 / 28.9 / 17.6% against 10.7 / 28.8 / 17.4% at
# k2 = 100 / 300 / 1000) after 24.5k steps. The shipped helmholtz2d-gauss is this run (53 min on one core):
# kernel error at N = 32 8.3 / 8.9 / 0.7% for k2 = 100 / 300 / 1000
.PHONY: train-helmholtz2d-gauss
train-helmholtz2d-gauss: $(STAMP) $(MODELS)/helmholtz2d.gpc
	$(TRAIN) -problem helmholtz2d -gauss 1 -train_output $(MODELS)/helmholtz2d-gauss.gpc \
	  $(TRAIN_ARGS_helmholtz2d) -train_epoch_scale 0.2 -train_init $(MODELS)/helmholtz2d.gpc
.PHONY: $(addprefix train-,$(SHIPPED) helmholtz1d helmholtz2d)
train-all: $(addprefix train-,$(SHIPPED))
$(addprefix train-,$(filter-out rotlap2d,$(SHIPPED)) helmholtz1d helmholtz2d): train-%: $(STAMP)
	$(TRAIN) -problem $* -train_output $(MODELS)/$*.gpc $(TRAIN_ARGS_$*)
# rotlap2d: the run above (its checkpoint is rotlap2d-base.ckpt), then 20k fine-tuning steps from it at a
# tenth of the learning rate. At theta = pi/2, N = 96, dense: 25.7 iterations after the first run, 21.0
# after the fine-tuning (bc loss 1.5e-2 -> 9.4e-3)
train-rotlap2d: $(STAMP)
	$(TRAIN) -problem rotlap2d -train_output $(MODELS)/rotlap2d.gpc \
	  -train_checkpoint $(MODELS)/rotlap2d-base.ckpt $(TRAIN_ARGS_rotlap2d)
	$(TRAIN) -problem rotlap2d -train_output $(MODELS)/rotlap2d.gpc $(ROTLAP_FINETUNE)

clean-venv:
	rm -rf $(VENV)

# Issue 9's benchmarks on 1 and 2 ranks: JSON and PNG in bench/results/, then bench/results/README.md.
# The issue's sizes; a greenpc format whose kernel would take over BENCH_BUDGET seconds of one core per
# set-up is skipped with its estimate, and ACA's H-matrix above N = 128 and dense above 64 by name
# (bench/solve.py -solve_largest): at N = 512 the Chebyshev H-matrix and the sparse format run.
# Problems without a shipped model run greenpc with a closed-form stand-in kernel, labelled as such.
BENCH_SIZES ?= 128,256,512
BENCH_SETUP_SIZES ?= 4096,16384,65536,262144
BENCH_BUDGET ?= 200
BENCH_SETUP_BUDGET ?= 60
bench: $(STAMP)
	$(PY) bench/solve.py -solve_sizes $(BENCH_SIZES) -solve_budget $(BENCH_BUDGET) -solve_smoothing 2
	$(MPIEXEC) -n 2 $(PY) bench/solve.py -solve_sizes $(BENCH_SIZES) -solve_budget $(BENCH_BUDGET) -solve_smoothing 2
	$(PY) bench/setup_cost.py -setup_sizes $(BENCH_SETUP_SIZES) -setup_budget $(BENCH_SETUP_BUDGET)
	$(PY) bench/apply.py
	$(MPIEXEC) -n 2 $(PY) bench/apply.py
	$(PY) bench/kernel_flops.py
	$(PY) bench/training.py -training_epochs 1
	$(PY) bench/two_level.py -two_level_sizes 128,256
	$(MPIEXEC) -n 2 $(PY) bench/two_level.py -two_level_sizes 128,256
	$(PY) bench/report.py
	$(PY) bench/helmholtz.py
	$(PY) bench/helmholtz.py -helmholtz_dim 1 -helmholtz_sweep_N 256 -helmholtz_sizes 1024,4096 \
	  -helmholtz_profiles constant,gauss -helmholtz_out bench/results/helmholtz1d
	for n in 1 2 4; do $(MPIEXEC) -n $$n $(PY) bench/closed_form.py || exit 1; done
	$(PY) bench/closed_form.py -closed_report

# The C example (examples/c/poisson2d.c, an ordinary DMDA code), built against the PETSc in .venv and
# run on $(NP) ranks with greenpc from options only. PETSc's -python needs PETSC_DIR and this
# environment's python3 first on PATH; `.venv/bin/greenpc-env` prints both and the command lines.
.PHONY: c-example
c-example: $(STAMP)
	$(MAKE) -C examples/c PETSC_DIR=$$($(PY) -m greenpc.env --petsc-dir)
	PETSC_DIR=$$($(PY) -m greenpc.env --petsc-dir) PATH=$(CURDIR)/$(VENV)/bin:$$PATH \
	  $(MPIEXEC) -n $(NP) examples/c/poisson2d -da_grid_x 65 -da_grid_y 65 -ksp_type fgmres \
	  -ksp_converged_reason -python -pc_type python -pc_python_type greenpc.GreenPC \
	  -greenpc_kernel poisson2d
