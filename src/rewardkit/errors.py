"""The one family of input errors: what a user can fix (bad data, bad options, missing files).

The command line turns an :class:`InputError` into ``error: <message>`` and exit code 2, with no
traceback; the message names the file, line and field where there is one. Any other exception is a bug
in rewardkit and ends with its traceback and exit code 1, so a bug never looks like a user mistake.

The classes also derive from :class:`ValueError` (and :class:`FileNotFoundError`) so that library
callers that catch those keep working.
"""

from __future__ import annotations


class InputError(Exception):
    """Something the user gave rewardkit is wrong; the message says what and where."""


class OptionError(InputError, ValueError):
    """A command-line option, config setting or function argument has a value rewardkit cannot use."""


class MissingInputError(InputError, FileNotFoundError):
    """A file, folder or model the user named does not exist (or cannot be read)."""


class UnsupportedError(InputError, ValueError):
    """A valid request that the chosen component cannot do (e.g. a pairwise judge asked for pointwise
    scores); the message is one line saying why."""


class UnknownNameError(OptionError, KeyError):
    """A name that no registry knows (a loss, head, scorer, benchmark, task); the message lists the known ones.
    Also a :class:`KeyError`, as a registry lookup."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
