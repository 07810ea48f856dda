"""Errors that use cases raise. They say what went wrong, not which HTTP status it is:
`service_kit.http.edge` maps them to problem+json responses."""


class ServiceError(Exception):
    """Base of the errors a use case reports to its caller."""


class NotFound(ServiceError):
    """The resource the request names does not exist."""


class Conflict(ServiceError):
    """The request is well-formed but clashes with the current state."""


class Unprocessable(ServiceError):
    """The request is well-formed but refers to something that does not exist."""


class Unauthenticated(ServiceError):
    """The request does not say who sent it, or not in a way this service can verify."""

    def __init__(self, detail: str, *, token_given: bool = True) -> None:
        super().__init__(detail)
        self.token_given = token_given


class Forbidden(ServiceError):
    """The caller is known but not allowed this operation."""


class PreconditionFailed(ServiceError):
    """The resource is not at the version the request was based on."""


class PreconditionRequired(ServiceError):
    """The request must say which version it is based on."""


class DependencyUnavailable(ServiceError):
    """A service or server this one needs did not answer in time; retrying later may work."""

    def __init__(self, detail: str, retry_after_s: int = 5) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class OutcomeUnknown(ServiceError):
    """The database may or may not have committed the change (the connection failed during the
    commit, or it did not answer in time): only a retry with the same Idempotency-Key can tell,
    and it then returns what was stored or makes the change once."""
