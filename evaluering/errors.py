"""Exceptions with a meaning for the command line.

``InputError`` is a problem with the user's input as a whole (a file that cannot be read,
a required column missing, a configuration that does not parse). The CLI turns it into one
clear message and exit code 2. Everything else that escapes is an internal error (exit 1).
"""

from __future__ import annotations


class EvalueringError(Exception):
    """Base class of the toolkit's own errors."""


class InputError(EvalueringError):
    """A file-level or configuration problem: the run stops, nothing is written (exit 2).

    The message names the file, the column (when there is one) and what was expected.
    """

    def __init__(self, message: str, *, file: str | None = None, column: str | None = None,
                 expected: str | None = None):
        parts = []
        if file is not None:
            parts.append(f"{file}")
        if column is not None:
            parts.append(f"column '{column}'")
        prefix = ": ".join(parts)
        full = f"{prefix}: {message}" if prefix else message
        if expected:
            full += f" (expected {expected})"
        super().__init__(full)
        self.file = file
        self.column = column
        self.expected = expected


class EstimationError(EvalueringError, ValueError):
    """The data do not allow the requested estimator (e.g. no never-treated units)."""


class DisclosureError(EvalueringError):
    """Something would be printed that disclosure control must suppress."""
