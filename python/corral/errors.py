"""The exceptions corral raises.

A guest's misbehaviour -- a trap, a limit, a non-zero exit, a compile error, a rejected
module -- is never an exception: it is a :class:`corral.Report` with that verdict. Exceptions
are for the caller's mistakes and for corral's own failures.
"""

from __future__ import annotations

__all__ = ["CorralError", "InvalidInputError", "PolicyError", "RecordError", "HostError"]


class CorralError(Exception):
    """Base class of every exception corral raises."""


class InvalidInputError(CorralError, ValueError):
    """The caller's input is invalid: an unreadable file, a bad argument or environment
    variable, an unknown language, a malformed case or HumanEval line (the command's exit
    status 2)."""


class PolicyError(InvalidInputError):
    """A policy failed to load or validate (the message has ``file:line:col`` and a hint)."""


class RecordError(InvalidInputError):
    """A record given to :func:`corral.replay` was refused: invalid, altered, from another
    engine, or asking for more than this machine allows. Nothing ran."""


class HostError(CorralError, RuntimeError):
    """corral itself failed: a compiler or language runner is missing (the message names
    it), a temporary directory cannot be made, ... (the command's exit status 70)."""
