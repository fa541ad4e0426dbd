"""Errors the CLI turns into one line and an exit status (2: bad input, 3: the pruning collapses the decision)."""


class DrtframeError(Exception):
    """A problem with what the user asked for. The message is shown as is, on one line."""

    exit_code = 2


class DecisionCollapse(DrtframeError):
    """The pruned model no longer makes a decision that the dense model made (exit 3; --force writes anyway)."""

    exit_code = 3


class ScheduleStopped(DrtframeError):
    """A schedule chose fewer removals than asked because no further one is safe; `order` holds those it chose.

    `drtframe prune` reports it as an error; `drtframe compare` shows where the method stopped. `record`
    is what the schedule checked on the way (as `PrunePlan.record`).
    """

    def __init__(self, message: str, order: tuple[int, ...], record: dict | None = None) -> None:
        super().__init__(message)
        self.order = tuple(order)
        self.record = record


class DrtframeWarning(UserWarning):
    """Something the user should know that does not stop the run; the CLI shows it as one line."""
