"""greenpc: a learned approximate-inverse (Green's function) preconditioner for PETSc.

Use it from any PETSc code with ``-pc_type python -pc_python_type greenpc.GreenPC -greenpc_weights F``.
``import greenpc`` stays light: the PC (petsc4py) and the trainer (JAX) load only when used.
"""
__version__ = "0.1.0"


def __getattr__(name):
    if name == "GreenPC":
        from .pc import GreenPC

        return GreenPC
    raise AttributeError(f"module 'greenpc' has no attribute {name!r}")


def create(pc, weights=None, kernel=None, **options):
    """Make ``pc`` (a petsc4py PC) a greenpc preconditioner, optionally setting -greenpc_* options.

    ``greenpc.create(pc, weights="react2d", format="hmatrix")`` is the same as the options
    ``-greenpc_weights react2d -greenpc_format hmatrix`` under the PC's prefix; ``kernel`` is either
    the name of a closed-form kernel (``-greenpc_kernel``) or a ``greenpc.kernels.Kernel`` object,
    which replaces the weight file. The options go into PETSc's database, where a later
    ``setFromOptions`` reads them (and any the command line adds).
    """
    from petsc4py import PETSc

    from .pc import GreenPC

    prefix = (pc.getOptionsPrefix() or "") + "greenpc_"
    database = PETSc.Options()
    if weights is not None:
        options["weights"] = weights
    if isinstance(kernel, str):
        options["kernel"], kernel = kernel, None
    for key, value in options.items():
        database.setValue(prefix + key, str(int(value)) if isinstance(value, bool) else str(value))
    context = GreenPC(kernel)
    pc.setType(PETSc.PC.Type.PYTHON)
    pc.setPythonContext(context)
    return context


def set_coordinates(pc, coordinates):
    """Give the PC the coordinates (n_local, d) of the rows this rank owns (highest precedence).

    Composed on the PETSc object as a Vec (``"greenpc_coordinates"``), so it holds for every petsc4py
    wrapper of the PC and whatever the PC's type is when it is given; the same slot as
    ``PCSetCoordinates`` (see ``greenpc.pc.geometry``).
    """
    from .pc.geometry import COMPOSED, coordinates_vec

    vec = coordinates_vec(coordinates)
    pc.compose(COMPOSED, vec)
    vec.destroy()
