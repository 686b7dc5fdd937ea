"""Exceptions whose messages tell the user what to do.

The CLI and UI catch :class:`RagError` and show its message on one line; anything
else is a bug and keeps its traceback.
"""


class RagError(Exception):
    """An expected failure with a message a user can act on."""


class InputError(RagError):
    """An input file or record cannot be used (empty, binary, unparseable, too big)."""


class IndexLoadError(RagError):
    """The index on disk is missing, corrupted or incompatible with the settings."""


class QuestionSetError(RagError):
    """A question set is malformed (names the line/record and the reason)."""


class LLMError(RagError):
    """The configured language model cannot be reached or loaded."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
