"""Errors the engine raises for bad user input. Both are ``ValueError`` subclasses whose
message is one line naming the file (when there is one) and what is wrong with it."""


class DataError(ValueError):
    """Unusable user data: unreadable, binary, badly encoded, empty, too big, too short, or
    holding characters outside the vocabulary."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, unreadable, corrupt, of another format
    version, or inconsistent (config, parameter shapes, non-finite values, vocabulary size)."""
