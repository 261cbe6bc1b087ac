"""Bad user input to a task: one clean message on the command line, no traceback.

Every loader and argument check raises a subclass of :class:`InputError`. It is a
``ValueError`` (so Python callers catch it as before) and Inspect's ``PrerequisiteError``,
which the ``inspect eval`` CLI reports by printing the message alone and exiting with status 1
(inspect_ai/_util/error.py ``exception_hook``; inspect_evals uses the same class for missing
prerequisites). Messages say which ``-T`` argument fixes the input where one does.
"""

from __future__ import annotations

from inspect_ai._util.error import PrerequisiteError
from rich.markup import escape


class InputError(ValueError, PrerequisiteError):
    """Input that cannot be used; ``str(error)`` is the plain message."""

    def __init__(self, message: str) -> None:
        ValueError.__init__(self, message)
        # Inspect prints .message with rich markup: a '[...]' in a file's text must stay as written
        self.message = escape(message)


class TaskArgumentError(InputError):
    """A ``-T`` task argument that is not allowed; the message names it and what is allowed."""
