"""Weight averaging of checkpoints from one lineage (a "model soup").

Stages that continue one another (stage k+1 starts from stage k's best weights) stay in one basin
of the loss, so the plain mean of their weights is itself a working model, and often a better one
than any of them: it sits nearer the basin's centre than the ends of each stage's trajectory. The
EMA the trainer keeps already averages *within* a stage; this averages *across* stages. Whether the
average is better is decided on the corpus's validation split, like every checkpoint choice
(``scripts/average_checkpoints.py --validate``), never on ../shared/eval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from deepsampler.config import to_dict
from deepsampler.errors import CheckpointError
from deepsampler.models.checkpoint import LoadedModel
from deepsampler.models.deepsampler import DeepSampler


def normalised_weights(count: int, weights: Sequence[float] | None = None) -> list[float]:
    """``count`` weights summing to 1: uniform by default, else ``weights`` normalised; they must
    be finite and >= 0 with a positive sum (``ValueError`` otherwise)."""
    w = [1.0] * count if weights is None else [float(x) for x in weights]
    if len(w) != count:
        raise ValueError(f"{len(w)} weights for {count} states")
    if not all(math.isfinite(x) and x >= 0 for x in w) or sum(w) <= 0:
        raise ValueError(f"weights must be finite, >= 0 and with a positive sum, got {w}")
    total = sum(w)
    return [x / total for x in w]


def average_state_dicts(
    states: Sequence[dict[str, torch.Tensor]], weights: Sequence[float] | None = None
) -> dict[str, torch.Tensor]:
    """Weighted mean of floating-point tensors of ``states`` (same keys and shapes); other
    tensors (integer buffers such as counters) must be equal in all and are copied.

    ``weights`` default to uniform; they are normalised to sum to 1 and must be non-negative
    with a positive sum. Raises ``ValueError`` on mismatched keys, shapes or integer buffers."""
    if len(states) < 1:
        raise ValueError("nothing to average: give at least one state")
    w = normalised_weights(len(states), weights)
    first = states[0]
    for i, state in enumerate(states[1:], start=1):
        if set(state) != set(first):
            diff = sorted(set(state) ^ set(first))
            raise ValueError(f"state {i} has other keys than state 0 (e.g. {diff[:3]})")
        for key, tensor in state.items():
            if tensor.shape != first[key].shape:
                raise ValueError(
                    f"state {i}: {key} has shape {tuple(tensor.shape)}, state 0 "
                    f"{tuple(first[key].shape)}"
                )
    out: dict[str, torch.Tensor] = {}
    for key, ref in first.items():
        if ref.is_floating_point():
            acc = torch.zeros_like(ref, dtype=torch.float64)
            for weight, state in zip(w, states, strict=True):
                acc += weight * state[key].to(torch.float64)
            out[key] = acc.to(ref.dtype)
        else:
            if any(not torch.equal(state[key], ref) for state in states[1:]):
                raise ValueError(f"{key} is not floating point and differs between the states")
            out[key] = ref.clone()
    return out


def average_models(
    loaded: Sequence[LoadedModel], weights: Sequence[float] | None = None
) -> DeepSampler:
    """A new model whose weights are the (weighted) mean of ``loaded`` models' weights.

    All must share one architecture (same model config); raises :class:`CheckpointError`
    naming the first that differs."""
    if len(loaded) < 2:
        raise CheckpointError("averaging needs at least two checkpoints")
    config = loaded[0].model.config
    for item in loaded[1:]:
        if item.model.config != config:
            a, b = to_dict(config), to_dict(item.model.config)
            keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            raise CheckpointError(
                f"{item.path}: another architecture than {loaded[0].path} (differs in {keys}); "
                "only checkpoints of one model can be averaged"
            )
    model = DeepSampler(config)
    try:
        model.load_state_dict(average_state_dicts([m.model.state_dict() for m in loaded], weights))
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    return model.eval()


def averaged_record(
    loaded: Sequence[LoadedModel],
    weights: Sequence[float] | None,
    valid: dict[str, Any] | None,
) -> dict[str, Any]:
    """The averaged checkpoint's training record: the last ingredient's (its config, data,
    steps, hours and hardware: a card describes one stage, its notes the lineage), with
    ``averaged_from`` listing every ingredient (path, weight, its steps and validation SDR) and
    ``valid_sdr`` replaced by the average's own when ``valid`` is given."""
    record = dict(loaded[-1].training or {})
    keep = ("steps", "examples_seen", "train_hours", "valid_sdr")
    record["averaged_from"] = [
        {"path": str(item.path), "weight": round(x, 6)}
        | {k: (item.training or {}).get(k) for k in keep}
        | {"real_stem_probability": _real_stem_probability(item.training)}
        for item, x in zip(loaded, normalised_weights(len(loaded), weights), strict=True)
    ]
    if valid is not None:
        record["valid_sdr"] = valid["sdr"]
        record["valid_sdr_per_source"] = valid["per_source"]
    else:
        record.pop("valid_sdr", None)
        record.pop("valid_sdr_per_source", None)
    return record


def _real_stem_probability(training: dict[str, Any] | None) -> Any:
    """The ingredient's share of real recorded stems (data recipes differ between stages)."""
    return (((training or {}).get("config") or {}).get("data") or {}).get("real_stem_probability")
