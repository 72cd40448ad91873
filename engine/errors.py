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
    """A file could not be written (``engine.atomic``): ``filename`` is the file (or folder) the
    caller asked for, never a temporary file; ``strerror`` the cause and what to do; ``errno``
    the system's code. ``str()`` is the one-line message ``cannot {action} {filename}: {strerror}``."""

    def __init__(self, path: str, reason: str, code: int | None = None, action: str = "write"):
        super().__init__(code, reason)
        self.filename = path
        self.action = action

    def __str__(self) -> str:
        return f"cannot {self.action} {self.filename}: {self.strerror}"
