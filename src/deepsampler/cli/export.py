"""``deepsampler export onnx``: the streaming step of a causal model as an ONNX graph."""

from __future__ import annotations

import argparse

from deepsampler.errors import DeepSamplerError


def cmd_export_onnx(args: argparse.Namespace) -> int:
    """Write the .onnx file and say how to run it."""
    from deepsampler.export.onnx_engine import export_onnx
    from deepsampler.separator import Separator

    sep = Separator(args.model, allow_untrained=args.allow_untrained)
    if sep.model is None:
        raise DeepSamplerError(f"{args.model} is already an ONNX export; pass a .pt model")
    if not sep.config.causal:
        raise DeepSamplerError(f"model {sep.name} is offline; only causal models export to ONNX")
    path = export_onnx(sep.model, args.output, sep.export_metadata)
    print(
        f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): the per-frame streaming step of "
        f"{sep.name}, state as explicit inputs/outputs; STFT/iSTFT run outside the graph. "
        f"Run it with `deepsampler stream --model {path} --input-device N ...` or "
        f"deepsampler.export.onnx_engine.OnnxStreamingSeparator.from_file"
    )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``export`` subcommand and its formats."""
    from deepsampler.separator import DEFAULT_MODEL

    exp = sub.add_parser("export", help="export a model (onnx)")
    exp_sub = exp.add_subparsers(dest="format", required=True, metavar="FORMAT")
    onnx_p = exp_sub.add_parser(
        "onnx", help="the streaming step as ONNX, with its state as explicit inputs/outputs"
    )
    onnx_p.add_argument("--model", default=DEFAULT_MODEL, help="causal model name or checkpoint")
    onnx_p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    onnx_p.add_argument("--allow-untrained", action="store_true", help=argparse.SUPPRESS)
    onnx_p.set_defaults(func=cmd_export_onnx)
