"""What every ``lstmviz`` sub-command module shares: the program name, the usage exit code,
``UsageError`` (a bad argument found after parsing), the one-line-error parser and the argparse
types built from ``engine.settings`` ranges. No sub-command lives here, so any command module
(``cli``, ``cli_analysis``, ``export_cli``) can import it without an import cycle."""

from __future__ import annotations

import argparse

from engine.settings import NON_NEGATIVE_INT, POSITIVE_INT, POSITIVE_REAL, Setting

PROG = "lstmviz"
EXIT_USAGE = 2


class UsageError(Exception):
    """A bad argument found after parsing: one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``lstmviz: error: MESSAGE (see 'lstmviz CMD --help')``."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


def setting_type(spec: Setting):
    """An argparse ``type`` parsing with ``spec.parse``: "must be a positive integer, got '0'"."""
    def parse(text: str):
        try:
            return spec.parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = spec.kind.__name__
    return parse


positive_int = setting_type(POSITIVE_INT)
non_negative_int = setting_type(NON_NEGATIVE_INT)
positive_float = setting_type(POSITIVE_REAL)
