"""Train a Green's function network: ``python -m greenpc.train -problem react1d -train_output F.gpc``.

Every setting is a PETSc option (command line, -options_file, PETSC_OPTIONS); ``-help`` lists the
``-train_*`` options with their defaults.
"""
import os
import sys


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    import petsc4py

    petsc4py.init(argv)
    from petsc4py import PETSc

    from ..options import help_text, read
    from . import config as cfg

    database = PETSc.Options()
    if database.hasName("help"):
        print(help_text(cfg.SPECS, "train_", "greenpc trainer options (-problem NAME, the preset's "
                                             "own -PARAM values, and):"))
        return 0
    options = read(cfg.SPECS, "train_", database)
    threads = options["threads"]
    if threads:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_cpu_multi_thread_eigen=false "
                                   f"intra_op_parallelism_threads={threads}").strip()
    config = cfg.from_options(database)
    from .loop import export, train

    if options["export"]:
        export(config, options["export"])
    else:
        train(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
