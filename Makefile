# greenpc: `make demo` runs the main job, `make test` the test suite; each sets everything up first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.greenpc-setup
PETSC_VERSION := 3.26.1
PETSC_CONFIGURE_OPTIONS := --with-cuda=0 --with-fc=0 --with-x=0 COPTFLAGS=-O2 CXXOPTFLAGS=-O2
DEPS := numpy scipy jax flax optax safetensors matplotlib tqdm pytest hypothesis mpi4py
NP ?= 2

# OpenMPI refuses root without these; --oversubscribe lets 2-4 ranks share these 2 cores.
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
export OMPI_MCA_rmaps_base_oversubscribe := 1
export PRTE_MCA_rmaps_default_mapping_policy := :oversubscribe
MPIEXEC := mpiexec --oversubscribe

.PHONY: all setup demo test clean-venv

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

clean-venv:
	rm -rf $(VENV)

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
