"""StemProver files in the one model-file format (:mod:`deepsampler.models.checkpoint`).

Two model classes, each with its codec (registered when ``models.checkpoint`` first reads a file
of either class, or when this module is imported):

``StemProver``
    config: ``{"stemprover": StemProverConfig as a dict, "adapters": {name: rank},
    "guide_digest": the predictor's guide separator's weights digest or None}``;
    weights: ``autoencoder.*``, ``denoiser.*`` (the base, without adapters), ``control.*``,
    ``predictor.*`` (the refiner's own weights, never its guide's) and
    ``adapters.<name>.*`` (each LoRA adapter's weights). The guide separator is named in the
    config and loaded from its own file; a guide with other weights than those the predictor
    learned is refused.
``RegressionNet``
    the one-pass regression control of the benchmark; config ``{"stemprover": the
    StemProverConfig of the model it was trained beside}``; weights: the net's.

``metadata`` holds what the trainer and ``scripts/ship_stemprover.py`` record (``stages_done``,
``name``, ``inference.steps``): what :func:`load_stemprover` returns as the model's "extra".
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from deepsampler.config import from_dict, to_dict
from deepsampler.errors import CheckpointError, ConfigError
from deepsampler.models.checkpoint import (
    Codec,
    State,
    load_checkpoint,
    load_exact,
    read_checkpoint,
    register_codec,
    save_checkpoint,
)
from deepsampler.stemprover import adapters as lora
from deepsampler.stemprover.mask_refiner import MaskRefiner
from deepsampler.stemprover.model import StemProver, StemProverConfig
from deepsampler.stemprover.refiners import RegressionNet

STEMPROVER = "StemProver"
REGRESSION = "RegressionNet"
_SECTIONS = ("autoencoder", "denoiser", "control", "predictor")
_GUIDE = "guide_model."


# ----- the predictive stage: its own weights, its guide by digest -------------------------------
def refiner_state(refiner: MaskRefiner) -> State:
    """The mask refiner's weights without its guide separator's."""
    return {k: v for k, v in refiner.state_dict().items() if not k.startswith(_GUIDE)}


def guide_digest(refiner: MaskRefiner) -> str | None:
    """SHA-256 of the refiner's guide separator's weights (None without a guide)."""
    if refiner.guide_model is None:
        return None
    h = hashlib.sha256()
    for name, value in sorted(refiner.guide_model.state_dict().items()):
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def load_refiner_state(refiner: MaskRefiner, state: State, digest: str | None = None) -> None:
    """Load :func:`refiner_state` output (a state with the guide's weights loads them too);
    ``digest``: the guide digest saved beside it, checked against the refiner's guide. Raises
    :class:`CheckpointError` (without a path) when either does not fit."""
    missing, unexpected = refiner.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(_GUIDE)]
    if missing or unexpected:
        raise CheckpointError(
            f"refiner state does not fit: missing {missing[:2]}, extra {unexpected[:2]}"
        )
    carried = any(k.startswith(_GUIDE) for k in state)
    if digest is not None and not carried and digest != guide_digest(refiner):
        raise CheckpointError(
            f"the guide {refiner.config.guide!r} has other weights than the refiner was trained "
            f"with (digest {guide_digest(refiner)}, expected {digest}); restore that "
            "separator or retrain the predictor stage"
        )


# ----- StemProver --------------------------------------------------------------------------------
def _encode_stemprover(model: StemProver) -> tuple[dict[str, Any], State]:
    state: State = {}
    parts: dict[str, Mapping[str, torch.Tensor]] = {
        "autoencoder": model.autoencoder.state_dict(),
        "denoiser": lora.base_state_dict(model.denoiser),
        "control": model.control.state_dict(),
    }
    if model.predictor is not None:
        parts["predictor"] = refiner_state(model.predictor)
    for name in model.adapter_ranks:
        parts[f"adapters.{name}"] = lora.adapter_state_dict(model.denoiser, name)
    for prefix, part in parts.items():
        state.update({f"{prefix}.{k}": v for k, v in part.items()})
    config = {
        "stemprover": to_dict(model.config),
        "adapters": dict(model.adapter_ranks),
        "guide_digest": None if model.predictor is None else guide_digest(model.predictor),
    }
    return config, state


def split_state(state: State, prefixes: list[str]) -> dict[str, State]:
    """A flat file state -> one state per prefix (``autoencoder.x`` -> ``{"autoencoder":
    {"x": ...}}``); a name under none of them is refused."""
    parts: dict[str, State] = {p: {} for p in prefixes}
    for key, value in state.items():
        prefix = next((p for p in prefixes if key.startswith(p + ".")), None)
        if prefix is None:
            raise CheckpointError(f"weights do not match its config (unexpected {key!r})")
        parts[prefix][key[len(prefix) + 1 :]] = value
    return parts


def _stemprover_config(config: dict[str, Any]) -> StemProverConfig:
    if not isinstance(config.get("stemprover"), dict):
        raise ConfigError("no 'stemprover' section")
    return from_dict(StemProverConfig, config["stemprover"])


def _decode_stemprover(config: dict[str, Any], state: State) -> StemProver:
    unknown = sorted(set(config) - {"stemprover", "adapters", "guide_digest"})
    ranks = config.get("adapters", {})
    digest = config.get("guide_digest")
    if unknown or not isinstance(ranks, dict) or not isinstance(digest, (str, type(None))):
        raise ConfigError(f"StemProver file config: unknown keys {unknown} or mistyped values")
    try:
        model = StemProver(_stemprover_config(config))  # a guided predictor loads its guide
    except ValueError as exc:  # e.g. a guide at another sample rate
        raise CheckpointError(str(exc)) from None
    names = [str(n) for n in ranks]
    parts = split_state(state, [*_SECTIONS, *(f"adapters.{n}" for n in names)])
    load_exact(model.autoencoder, parts["autoencoder"])
    load_exact(model.denoiser, parts["denoiser"])
    load_exact(model.control, parts["control"])
    if model.predictor is not None:
        load_refiner_state(model.predictor, parts["predictor"], digest)
    elif parts["predictor"]:
        raise CheckpointError("weights do not match its config (a predictor without its config)")
    for name in names:
        rank = ranks[name]
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ConfigError(f"adapter {name!r}: rank {rank!r} is not a whole number >= 1")
        try:
            lora.load_adapter(model.denoiser, name, parts[f"adapters.{name}"], rank=rank)
        except ValueError as exc:
            raise CheckpointError(str(exc)) from None
        model.adapter_ranks[name] = rank
    model.set_adapter_weights({})
    return model


def save_stemprover(
    path: str | Path, model: StemProver, extra: Mapping[str, Any] | None = None
) -> Path:
    """Write ``model`` (and ``extra``: stages done, name, inference settings) atomically."""
    return save_checkpoint(path, model, metadata=dict(extra or {}))


def load_stemprover(path: str | Path) -> tuple[StemProver, dict[str, Any]]:
    """Load and verify a StemProver file; returns (model in eval mode, its ``extra``)."""
    loaded = load_checkpoint(path, kind=STEMPROVER)
    return loaded.model, loaded.metadata


def read_stemprover(path: str | Path) -> dict[str, Any]:
    """A StemProver file's verified contents (config, flat weights, metadata) without building
    the model (nor loading its guide): for taking parts of one, as ``init_from`` does."""
    return read_checkpoint(path, kind=STEMPROVER)


# ----- the regression control -------------------------------------------------------------------
#: the config fields a regression net's shape depends on
_NET_FIELDS = (
    "latent_channels",
    "denoiser_width",
    "bands",
    "heads",
    "phase_width",
    "mixture_condition",
)


def _encode_regression(net: RegressionNet) -> tuple[dict[str, Any], State]:
    return {"stemprover": to_dict(net.config)}, dict(net.state_dict())


def _decode_regression(config: dict[str, Any], state: State) -> RegressionNet:
    if set(config) != {"stemprover"}:
        raise ConfigError(
            f"regression file config: expected only 'stemprover', got {sorted(config)}"
        )
    net = RegressionNet(_stemprover_config(config))
    load_exact(net, state)
    return net


def save_regression(net: RegressionNet, path: str | Path) -> Path:
    """Write the regression control (with the config of the model it was trained beside)."""
    return save_checkpoint(path, net)


def load_regression(model: StemProver, path: str | Path) -> RegressionNet:
    """Load and verify the regression control trained beside ``model`` (refused in one line
    if it was made for a model of other sizes)."""
    net = load_checkpoint(path, kind=REGRESSION).model
    mismatch = [f for f in _NET_FIELDS if getattr(net.config, f) != getattr(model.config, f)]
    if mismatch:
        raise CheckpointError(
            f"{path}: a regression control for a StemProver of other sizes ({', '.join(mismatch)}"
            f" differ); use the one trained beside this model"
        )
    return net


register_codec(STEMPROVER, Codec(_encode_stemprover, _decode_stemprover))
register_codec(REGRESSION, Codec(_encode_regression, _decode_regression))
