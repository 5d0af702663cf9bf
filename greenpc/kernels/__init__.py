"""Kernels G(x, y): the interface the PC and the compressors use, and closed-form references."""
from .base import Kernel, KernelError
from .closedform import CLOSED_FORMS, closed_form

__all__ = ["CLOSED_FORMS", "Kernel", "KernelError", "closed_form"]
