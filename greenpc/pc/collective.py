"""Errors that every rank raises together, so no rank waits in a collective another rank skipped.

``agree(comm, error)``: each rank passes its own exception (or None); if any rank failed, every rank
raises a ``GreenPCError`` with the message of the lowest failing rank.
"""


class GreenPCError(RuntimeError):
    """A set-up failure of the greenpc preconditioner, raised identically on every rank."""


def agree(comm, error):
    """Raise on all ranks if ``error`` (an exception or None) is set on any rank."""
    mpi = comm.tompi4py()
    message = None if error is None else f"{error}"
    failed = mpi.allgather(message)
    for rank, text in enumerate(failed):
        if text is not None:
            where = f" (on rank {rank} of {len(failed)})" if len(failed) > 1 else ""
            raise GreenPCError(f"greenpc: {text}{where}") from error


def run(comm, function, *args, **kwargs):
    """``function(*args)`` on every rank; a failure on any rank becomes the same error on all."""
    try:
        result, error = function(*args, **kwargs), None
    except (ValueError, RuntimeError, OSError, KeyError, MemoryError) as err:
        result, error = None, err
    agree(comm, error)
    return result
