#!/usr/bin/env python
"""Convert StemProver files of the old formats to the one model-file format.

    .venv/bin/python scripts/convert_stemprover.py OLD.pt [OLD.pt ...] [--out FOLDER]

Old formats: ``deepsampler-stemprover-v1`` (a StemProver model: sections per part, no version,
no digest) and ``deepsampler-stemprover-regression-v1`` (its regression control: weights only,
no config). A model is rebuilt exactly as the old loader did (its guide separator checked by
digest), written with :func:`deepsampler.stemprover.checkpoint.save_stemprover` and read back
through the one loader, which must give the same weights. A regression control takes its config
from its model file: ``NAME.pt`` beside ``NAME-regression.pt``, ``stemprover.pt`` beside
``regression.pt``, or ``--model``. Each file is replaced atomically (``--out``: written there
instead). Files already in the new format are left alone.

This converted the shipped files once:

    .venv/bin/python scripts/convert_stemprover.py \\
        src/deepsampler/pretrained/stemprover/stemprover.pt \\
        src/deepsampler/pretrained/stemprover/stemprover-regression.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from deepsampler.config import from_dict
from deepsampler.errors import DeepSamplerError
from deepsampler.models.checkpoint import FORMAT, load_checkpoint
from deepsampler.stemprover import adapters as lora
from deepsampler.stemprover.checkpoint import (
    load_refiner_state,
    load_stemprover,
    save_regression,
    save_stemprover,
)
from deepsampler.stemprover.model import StemProver, StemProverConfig
from deepsampler.stemprover.refiners import RegressionNet

OLD_MODEL = "deepsampler-stemprover-v1"
OLD_REGRESSION = "deepsampler-stemprover-regression-v1"


def _raw(path: Path) -> dict[str, Any]:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict):
        raise DeepSamplerError(f"{path}: not a StemProver file")
    return payload


def old_model(payload: dict[str, Any]) -> tuple[StemProver, dict[str, Any]]:
    """A model from an old-format payload, rebuilt as the old ``StemProver.load`` did."""
    model = StemProver(from_dict(StemProverConfig, payload["config"]))
    model.autoencoder.load_state_dict(payload["autoencoder"])
    model.denoiser.load_state_dict(payload["denoiser"])
    model.control.load_state_dict(payload["control"])
    if model.predictor is not None:
        load_refiner_state(
            model.predictor, payload["predictor"], payload.get("predictor_guide_digest")
        )
    for name, entry in payload["adapters"].items():
        lora.load_adapter(model.denoiser, name, entry["state"], rank=int(entry["rank"]))
        model.adapter_ranks[name] = int(entry["rank"])
    model.set_adapter_weights({})
    return model.eval(), dict(payload.get("extra", {}))


def _same_weights(a: torch.nn.Module, b: torch.nn.Module, what: Path) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    if sa.keys() != sb.keys() or any(not torch.equal(sa[k], sb[k]) for k in sa):
        raise DeepSamplerError(f"{what}: the converted file does not read back the same weights")


def model_config(path: Path) -> StemProverConfig:
    """The StemProverConfig of a StemProver file of either format."""
    payload = _raw(path)
    if payload.get("format") == OLD_MODEL:
        return from_dict(StemProverConfig, payload["config"])
    if payload.get("format") == FORMAT and payload.get("model") == "StemProver":
        return from_dict(StemProverConfig, payload["config"]["stemprover"])
    raise DeepSamplerError(f"{path}: not a StemProver model file")


def paired_model(path: Path) -> Path:
    """The model file a regression control was trained beside."""
    if path.stem.endswith("-regression"):
        return path.with_name(path.stem.removesuffix("-regression") + ".pt")
    return path.with_name("stemprover.pt")


def convert(path: Path, out: Path, model_path: Path | None = None) -> str:
    """Convert ``path`` to ``out`` (may be the same path); returns what was done."""
    payload = _raw(path)
    fmt = payload.get("format")
    if fmt == FORMAT:
        return f"{path}: already in the {FORMAT} format; left alone"
    if fmt == OLD_MODEL:
        model, extra = old_model(payload)
        save_stemprover(out, model, extra)
        again, extra_again = load_stemprover(out)
        _same_weights(model, again, out)
        if extra_again != extra:
            raise DeepSamplerError(f"{out}: the converted file lost metadata")
        return f"{path} -> {out}: StemProver model ({len(model.adapters)} adapters)"
    if fmt == OLD_REGRESSION:
        source = model_path or paired_model(path)
        net = RegressionNet(model_config(source))
        net.load_state_dict(payload["state"])
        save_regression(net.eval(), out)
        _same_weights(net, load_checkpoint(out, kind="stemprover-regression").model, out)
        return f"{path} -> {out}: regression control (config from {source})"
    raise DeepSamplerError(f"{path}: format {fmt!r} is not an old StemProver format")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", type=Path, nargs="+", help="old-format StemProver files")
    ap.add_argument("--out", type=Path, help="folder for the converted files (default: in place)")
    ap.add_argument("--model", type=Path, help="the model file a regression control belongs to")
    args = ap.parse_args(argv)
    # models first: a regression control may read its config from one converted in this run
    files = sorted(args.files, key=lambda p: _raw(p).get("format") == OLD_REGRESSION)
    for path in files:
        out = path if args.out is None else args.out / path.name
        print(convert(path, out, args.model))


if __name__ == "__main__":
    main()
