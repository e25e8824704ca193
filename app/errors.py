"""The domain error tree. Services raise these; views turn them into messages."""


class HotNetError(Exception):
    """Base class for every error a service raises on purpose."""


class NotFound(HotNetError):
    """The record asked for does not exist (or is not visible to this user)."""


class NotAllowed(HotNetError):
    """The acting account may not see or change this record (another area's personal data,
    a staff-only action); shown as 403."""


class InvalidInput(HotNetError):
    """The input breaks a rule; the message is for the user, `field` names the form field."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def raise_problems(problems: dict[str, str]) -> None:
    """Raise one InvalidInput carrying every problem by field (the first as its message),
    so that a form shows them all at once; do nothing when there are none."""
    if problems:
        error = InvalidInput(next(iter(problems.values())), field=next(iter(problems)))
        error.problems = problems
        raise error


class InvalidState(HotNetError):
    """The record is not in a state that allows this action."""


class LinkInvalid(HotNetError):
    """A one-time sign-in link is unknown, used or expired."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
