"""Errors a client can act on, raised by any layer. Each names the gRPC status code it travels as (`status`): the
server turns an error into its code (learnerfit/runtime/grpc.py) and a client turns a code back into the error
(`from_status`), by this one table. Plain exceptions: the code that raises them knows nothing of gRPC."""

from __future__ import annotations


class LearnerFitError(Exception):
    """Base of the errors that mean something to a client."""

    status = "INTERNAL"


class InvalidInput(LearnerFitError, ValueError):
    """Bad input; `field` is the path of the offending field (e.g. "problems[2].question")."""

    status = "INVALID_ARGUMENT"

    def __init__(self, field: str, why: str):
        super().__init__(f"{field}: {why}")
        self.field = field
        self.why = why


class TooLarge(InvalidInput):
    """A request over a size limit (too many items, too long a text): bad input (AIP-193), not a lack of capacity;
    `why` names the limit and the setting that sets it."""


class NotFound(LearnerFitError, LookupError):
    """The thing asked for does not exist (a batch, a checkpoint)."""

    status = "NOT_FOUND"


class LimitExceeded(LearnerFitError):
    """A capacity limit is reached (live batches, open streams): the same request can succeed later. The message
    names the limit and its setting."""

    status = "RESOURCE_EXHAUSTED"


class Unavailable(LearnerFitError):
    """A dependency is down for now (broker, Oracle endpoint, registry); retrying later can succeed."""

    status = "UNAVAILABLE"


class FailedPrecondition(LearnerFitError):
    """The system is not in the state the request needs (e.g. nothing to train on yet)."""

    status = "FAILED_PRECONDITION"


class RemoteError(LearnerFitError):
    """A called service failed on the call (INTERNAL, or a code no error above stands for): retrying the same call
    will not help."""


ERRORS: tuple[type[LearnerFitError], ...] = (InvalidInput, NotFound, LimitExceeded, Unavailable, FailedPrecondition)


def from_status(status: str, details: str, where: str = "") -> LearnerFitError:
    """The error a status code (its name, e.g. "NOT_FOUND") and its details stand for, on the client's side. The
    server's message is kept as it is, so a service can pass it on to its own client; `where` (e.g. "registry at
    host:port") prefixes only what says a service is down or failed, where knowing which one matters."""
    if status == "INVALID_ARGUMENT":
        field, _, why = details.partition(": ")
        return InvalidInput(field, why) if why else InvalidInput(where or "request", details)
    prefix = f"{where}: " if where else ""
    if status == "DEADLINE_EXCEEDED":  # no answer in time: the service may answer a later call
        return Unavailable(f"{prefix}no answer in time ({details})")
    for kind in ERRORS:
        if kind.status == status:
            return kind((prefix if kind is Unavailable else "") + details)
    return RemoteError(f"{prefix}{status}: {details}")
