"""The one exception family for problems a user can cause and fix.

Bugs stay ordinary exceptions; everything raised as `OppyError` carries a message that says what to do.
"""

from __future__ import annotations


class OppyError(Exception):
    """A problem with the input, the output, the model or the options, with a message naming the fix."""


class ModelError(OppyError):
    """The model file is missing, unreadable, or does not honour the model contract."""


class NothingToRender(OppyError):
    """The input holds no readable frame."""


class FrameError(OppyError):
    """One frame cannot be colourised (its pixels, or the model's answer for it, are not usable); a render skips
    it with this reason and goes on."""
