"""Errors a client can act on, raised by any layer and mapped to gRPC status codes in one place
(learnerfit/runtime/grpc.py). Plain exceptions: the code that raises them knows nothing of gRPC."""

from __future__ import annotations


class LearnerFitError(Exception):
    """Base of the errors that mean something to a client."""


class InvalidInput(LearnerFitError, ValueError):
    """Bad input; `field` is the path of the offending field (e.g. "problems[2].question")."""

    def __init__(self, field: str, why: str):
        super().__init__(f"{field}: {why}")
        self.field = field
        self.why = why


class NotFound(LearnerFitError, LookupError):
    """The thing asked for does not exist (a batch, a checkpoint)."""


class LimitExceeded(LearnerFitError):
    """A request over a size limit; the message names the limit and the setting that sets it."""


class Unavailable(LearnerFitError):
    """A dependency is down for now (broker, Oracle endpoint, registry); retrying later can succeed."""


class FailedPrecondition(LearnerFitError):
    """The system is not in the state the request needs (e.g. nothing to train on yet)."""
