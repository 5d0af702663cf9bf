"""The alphaMSNN: its architecture record (JAX-free) and its flax definition (``network``)."""
from .architecture import Architecture

__all__ = ["Architecture"]
