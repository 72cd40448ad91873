"""Errors the engine raises for bad user input and unusable resources. Each message is one line
naming the file (when there is one) and what is wrong; all but ``FileWriteError`` (an
``OSError``, so callers that catch file-system errors keep working) are ``ValueError`` subclasses."""


class DataError(ValueError):
    """Unusable user data: unreadable, binary, badly encoded, empty, too big, too short, or
    holding characters outside the vocabulary."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, unreadable, corrupt, of another format
    version, or inconsistent (config, parameter shapes, non-finite values, vocabulary size)."""


class NotEnoughMemory(DataError):
    """The work would need more memory than this machine has available (``engine.memory``)."""


class FileWriteError(OSError):
    """A file could not be written (``engine.atomic``); the message names the file the caller
    asked for and the cause (``errno`` is kept)."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.errno = code

    def __str__(self) -> str:
        return self.args[0]
