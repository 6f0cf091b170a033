"""The one exception family for problems a user can cause and fix.

Bugs stay ordinary exceptions; everything raised as `OppyError` carries a message that says what to do.
"""

from __future__ import annotations

import re


class OppyError(Exception):
    """A problem with the input, the output, the model or the options, with a message naming the fix."""


class ModelError(OppyError):
    """The model file is missing, unreadable, or does not honour the model contract."""


class NothingToRender(OppyError):
    """The input holds no readable frame."""


class FrameError(OppyError):
    """One frame cannot be colourised (its pixels, or the model's answer for it, are not usable); a render skips
    it with this reason and goes on."""


#: a value longer than this is cut in a message (a 10,000-character option is not echoed whole)
MESSAGE_VALUE_LIMIT = 100
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_LIBRARY_LOG = re.compile(r"^\s*(\d{4}-\d\d-\d\d[ T][\d:.]+\s+)?\[[EWIV]:onnxruntime:")


def one_line(message: str, limit: int = MESSAGE_VALUE_LIMIT) -> str:
    """A message as one line for a terminal: terminal colour codes removed, a library's own log lines left out
    (ONNX Runtime's), whitespace runs made single spaces, and every word longer than `limit` characters cut, with
    its length said."""
    lines = [line for line in _ANSI.sub("", str(message)).splitlines() if not _LIBRARY_LOG.match(line)]
    words = []
    for word in " ".join(lines).split():
        if len(word) > limit + 20:
            word = f"{word[:limit]}…({len(word)} characters)"
        words.append(word)
    return " ".join(words)
