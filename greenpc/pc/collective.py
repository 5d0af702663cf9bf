"""Errors that every rank raises together, so no rank waits in a collective another rank skipped.

``agree(comm, error)``: each rank passes its own exception (or None); if any rank failed, every rank
raises a ``GreenPCError`` with the message of the lowest failing rank.

``run(comm, function, ...)`` calls ``function`` on every rank and then agrees. The rule that keeps a
parallel set-up from hanging: ``function`` must not raise on one rank while another enters a collective
(an MPI reduction, creating or assembling a PETSc Mat). So a step that mixes the two does its rank-local
work (kernel evaluations, checks) in a nested ``run`` and only then calls the collective; a failure
inside the nested ``run`` already reached every rank, and the outer ``run`` passes it on unchanged.
"""

#: exception types whose message alone says what went wrong; any other type is named in the message
EXPECTED = (ValueError, RuntimeError, OSError, KeyError, MemoryError)


class GreenPCError(RuntimeError):
    """A set-up failure of the greenpc preconditioner, raised identically on every rank."""


def describe(error):
    """The text of ``error`` for the user: its message, with its type when that is not self-evident."""
    text = f"{error}"
    if isinstance(error, KeyError) and error.args:
        text = f"{error.args[0]}"
    if not isinstance(error, EXPECTED) or not text:
        text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return text


def agree(comm, error):
    """Raise on all ranks if ``error`` (an exception or None) is set on any rank."""
    mpi = comm.tompi4py()
    message = None if error is None else describe(error)
    failed = mpi.allgather(message)
    for rank, text in enumerate(failed):
        if text is not None:
            where = f" (on rank {rank} of {len(failed)})" if len(failed) > 1 else ""
            raise GreenPCError(f"greenpc: {text}{where}") from error


def run(comm, function, *args, **kwargs):
    """``function(*args)`` on every rank; a failure on any rank becomes the same error on all.

    Any exception counts (an unexpected type too: a rank that skipped the agreement would leave the
    others waiting); a ``GreenPCError`` from a nested ``run`` was raised by every rank already.
    """
    try:
        result, error = function(*args, **kwargs), None
    except GreenPCError:
        raise
    except Exception as err:  # noqa: BLE001 - every failure must reach the other ranks
        result, error = None, err
    try:
        agree(comm, error)
    finally:
        # ``error`` -> its traceback -> this frame -> ``error`` is a reference cycle, freed only by the
        # garbage collector at a moment that differs between ranks; PETSc objects held by the frames
        # (the PC, its operators) would then be destroyed on one rank before another, and PETSc's
        # communicator bookkeeping (MPI_Comm_dup when a rank has no object left on the communicator)
        # would leave the ranks in different collectives.
        del error
    return result
