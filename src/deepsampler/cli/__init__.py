"""The ``deepsampler`` command: one entry point with subcommands, one module per command group.

``build_parser`` gathers each module's ``add_parser``; ``main`` runs the chosen command and
turns its failures into one ``deepsampler: error: ...`` line and an exit status. The command
modules share :mod:`deepsampler.cli._common` and never import this package's ``__init__``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from deepsampler.cli import (
    batch,
    data,
    detect,
    enhance,
    evaluate,
    export,
    models,
    separate,
    serve,
    stemprover,
    stream,
    train,
    transcribe,
)
from deepsampler.cli._common import error
from deepsampler.cli._extras import install_hint
from deepsampler.errors import DeepSamplerError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``deepsampler`` parser with every subcommand, in the order ``--help`` lists them."""
    from deepsampler import __version__

    parser = argparse.ArgumentParser(
        prog="deepsampler", description="Real-time audio source separation."
    )
    parser.add_argument("--version", action="version", version=f"deepsampler {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (separate, batch, stream, export, evaluate, data, train, enhance, stemprover):
        group.add_parser(sub)
    transcribe.add_parser(sub)
    detect.add_parser(sub)
    models.add_parsers(sub)
    serve.add_parser(sub)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Our own warnings (a truncated file) as one line, like errors; others as Python prints
    them."""
    from deepsampler.errors import AudioWarning

    if issubclass(category, AudioWarning):
        print(f"deepsampler: warning: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``deepsampler ARGV``: the command's exit status; errors, a missing optional package
    and a stop (Ctrl-C, SIGTERM, SIGHUP) each end in one line on stderr."""
    from deepsampler.interrupts import exit_status, install_stop_handlers, stop_name

    parser = build_parser()
    args = parser.parse_args(argv)
    # SIGTERM / SIGHUP take Ctrl-C's path: unfinished outputs removed, a recording finalised
    install_stop_handlers()
    warnings.showwarning = _show_warning
    try:
        return args.func(args)
    except DeepSamplerError as exc:
        error(str(exc))
        return 1
    except ImportError as exc:  # an optional extra is not installed
        name = (exc.name or "").split(".")[0]
        error(f"this command needs the '{name or exc}' package: {install_hint(name)}")
        return 1
    except KeyboardInterrupt as exc:
        error(f"stopped by {stop_name(exc)}; unfinished outputs were removed")
        return exit_status(exc)
