"""The PETSc python preconditioner and the PETSc-side pieces it uses (geometry, formats, fit)."""
from .context import GreenPC

__all__ = ["GreenPC"]
