"""``deepsampler serve``: the local web app (:mod:`deepsampler.web`) under uvicorn: separate
uploaded files in a queue, or the microphone live, from a browser."""

from __future__ import annotations

import argparse
from pathlib import Path

from deepsampler.cli._common import sayer
from deepsampler.errors import DeepSamplerError

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def _count(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r}: use a whole number >= 0")
    return int(value)


def cmd_serve(args: argparse.Namespace) -> int:
    """Start the server and serve until stopped (Ctrl-C)."""
    import uvicorn

    from deepsampler.web import Settings, create_app

    if not 0 < args.port < 65536:
        raise DeepSamplerError(f"--port {args.port}: use 1 to 65535")
    settings = Settings(
        max_upload_mb=args.max_upload_mb,
        workers=args.workers,
        keep_hours=args.keep_hours,
        max_live=args.max_live,
        engine=args.engine,
        **({"data_dir": Path(args.data_dir)} if args.data_dir else {}),
        **({"detector": args.detector} if args.detector is not None else {}),
    )
    say = sayer(args.quiet)
    if args.host not in LOCAL_HOSTS:
        say(
            f"warning: listening on {args.host}: anyone who can reach this machine can upload "
            "files and use its CPU; the app has no login"
        )
    app = create_app(settings)  # loads the detector: one that cannot serve is one line
    models = app.state.models
    if models.detector is not None:
        (name,) = models.detects
        say(f"{models.detector.describe()} | its events come with the {name} model's jobs")
    host = f"[{args.host}]" if ":" in args.host else args.host
    say(
        f"DeepSampler web app on http://{host}:{args.port}/ (API docs at /docs) | "
        f"{settings.workers} worker(s), uploads up to {settings.max_upload_mb:g} MB, results "
        f"kept {settings.keep_hours:g} h in {settings.data_dir} | Ctrl-C stops it"
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning" if args.quiet else "info")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``serve`` subcommand."""
    p = sub.add_parser(
        "serve",
        help="start the local web app (separate files or the microphone in a browser)",
        description="Serve a web page and JSON API that separate uploaded files in a queue and "
        "the browser's microphone live (needs the web extra: pip install 'deepsampler[web]').",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=200.0,
        help="largest upload accepted, in MB (default: %(default)s)",
    )
    p.add_argument(
        "--workers",
        type=_count,
        default=1,
        help="files separated at once; the rest wait in the queue (default: %(default)s)",
    )
    p.add_argument(
        "--keep-hours",
        type=float,
        default=24.0,
        help="remove a finished job's files this long after it ended (default: %(default)s)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="the server's folder for its queue, uploads and stems (default: "
        "~/.cache/deepsampler/web, or under $DEEPSAMPLER_CACHE)",
    )
    p.add_argument(
        "--max-live",
        type=_count,
        default=4,
        help="live microphone sessions at once (0: live mode off) (default: %(default)s)",
    )
    p.add_argument(
        "--engine",
        choices=("auto", "onnx", "torch"),
        default="auto",
        help="the live mode's streaming engine (default: %(default)s: onnx where installed)",
    )
    p.add_argument(
        "--detector",
        default=None,
        metavar="NAME_OR_PATH",
        help="siren detector run on the jobs of its separator, its events drawn on the page "
        "(a shipped name or a checkpoint; default: the shipped siren-sde once it ships; "
        "'none': off)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no start line or request log")
    p.set_defaults(func=cmd_serve)
