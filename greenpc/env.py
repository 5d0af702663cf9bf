"""What a C code needs to build against this environment's PETSc and load greenpc at run time.

``greenpc-env`` (or ``python -m greenpc.env``) prints the settings and the exact command lines;
``--shell`` prints only the ``export`` lines (``eval "$(greenpc-env --shell)"``) and ``--petsc-dir``
only the PETSc directory (for makefiles).

A C program loads python preconditioners through ``-python``: PETSc then runs ``python3`` from
``PATH`` (or the interpreter given as ``-python EXE``) to find libpython, starts it inside the program
and imports petsc4py, which must be the petsc4py of this environment; ``PETSC_DIR`` must be set
because PETSc expands ``${PETSC_DIR}`` when it extends python's ``sys.path``.
"""
import argparse
import os
import re
import shlex
import sys

GREENPC_OPTIONS = "-pc_type python -pc_python_type greenpc.GreenPC -greenpc_kernel poisson2d"


def petsc_dir():
    """The PETSc this environment's petsc4py uses (the pip package ``petsc`` when installed)."""
    try:
        import petsc

        return petsc.get_petsc_dir()
    except ImportError:
        import petsc4py

        config = petsc4py.get_config()
        return os.path.join(config["PETSC_DIR"], config.get("PETSC_ARCH") or "")


def python_bin():
    """The directory holding this environment's ``python3`` (to go first on PATH)."""
    return os.path.dirname(os.path.abspath(sys.executable))


def petsc_variables(directory):
    """NAME -> value from PETSc's ``lib/petsc/conf/petscvariables``, ``${PETSC_DIR}`` expanded."""
    values = {}
    path = os.path.join(directory, "lib", "petsc", "conf", "petscvariables")
    with open(path) as handle:
        for line in handle:
            name, sep, value = line.partition("=")
            if sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name.strip()):
                values[name.strip()] = value.strip().replace("${PETSC_DIR}", directory)
    return values


def settings():
    """The environment variables and command lines, as a dict of strings."""
    directory = petsc_dir()
    variables = petsc_variables(directory)
    compiler = variables.get("PCC") or variables.get("CC", "mpicc")
    includes = variables.get("PETSC_CC_INCLUDES", f"-I{directory}/include")
    libraries = variables.get("PETSC_WITH_EXTERNAL_LIB",
                              f"-Wl,-rpath,{directory}/lib -L{directory}/lib -lpetsc")
    mpiexec = variables.get("MPIEXEC", "mpiexec")
    python3 = shlex.quote(os.path.join(python_bin(), "python3"))
    return {
        "PETSC_DIR": directory,
        "python_bin": python_bin(),
        "compile": f"{compiler} {includes} -o app app.c {libraries}",
        "run": f"{mpiexec} -n 2 ./app -python {GREENPC_OPTIONS}",
        "run_naming_python": f"{mpiexec} -n 2 ./app -python {python3} {GREENPC_OPTIONS}",
    }


def main(argv=None):
    parser = argparse.ArgumentParser(prog="greenpc-env", description=__doc__.split("\n\n")[0])
    parser.add_argument("--shell", action="store_true", help="only the export lines")
    parser.add_argument("--petsc-dir", action="store_true", help="only PETSC_DIR")
    args = parser.parse_args(argv)
    if args.petsc_dir:
        print(petsc_dir())
        return 0
    found = settings()
    exports = [f"export PETSC_DIR={shlex.quote(found['PETSC_DIR'])}",
               f"export PATH={shlex.quote(found['python_bin'])}{os.pathsep}\"$PATH\""]
    if args.shell:
        print("\n".join(exports))
        return 0
    print("# environment for a C code that uses greenpc (PETSc's -python loads python3 from PATH)")
    print("\n".join(exports))
    print("\n# compile and link against this PETSc")
    print(found["compile"])
    print("\n# run with greenpc through options only (-greenpc_weights FILE for a trained model)")
    print(found["run"])
    print("\n# or, without changing PATH, name the interpreter after -python")
    print(found["run_naming_python"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
