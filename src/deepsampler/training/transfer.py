"""Start a model from another model's weights when their frequency grids differ.

A DeepSampler's convolutions, attention and feed-forward layers do not depend on the STFT size;
only a few tensors are indexed by frequency along their first axis: the per-bin input
normalisation (one row per STFT bin) and the per-band split/merge projections (one slice per
band). Both grids divide ``[0, sample_rate / 2)`` evenly, so a row of the new grid takes the row
of the old grid whose cell holds the new cell's centre frequency. This lets an offline model with
a long window (fine frequency resolution) start from a trained real-time model with a short one
instead of from random weights.
"""

from __future__ import annotations

import torch
from torch import nn

from deepsampler.errors import ConfigError

#: state-dict entries whose first axis runs over frequency (STFT bins or latent bands)
FREQUENCY_INDEXED = (
    "input_scale",
    "input_bias",
    "latent.split.weight",
    "latent.split.bias",
    "latent.merge.weight",
    "latent.merge.bias",
)


def resample_frequency_rows(tensor: torch.Tensor, rows: int) -> torch.Tensor:
    """``tensor`` ``[n, ...]`` over ``n`` even frequency cells -> ``[rows, ...]``: each new cell
    takes the old cell that holds its centre frequency."""
    n = tensor.shape[0]
    centres = (torch.arange(rows, dtype=torch.float64) + 0.5) / rows
    index = torch.clamp((centres * n).floor().long(), 0, n - 1)
    return tensor[index].clone()


def transfer_weights(source: dict[str, torch.Tensor], model: nn.Module) -> list[str]:
    """Load ``source`` (a state dict) into ``model``, resampling the frequency-indexed tensors
    whose grid differs. Returns the names that were resampled (empty when every shape matched).

    Raises :class:`ConfigError` when anything else differs: missing or unexpected entries, or a
    shape mismatch outside the frequency axis of :data:`FREQUENCY_INDEXED`.
    """
    target = model.state_dict()
    missing = sorted(set(target) - set(source))
    unexpected = sorted(set(source) - set(target))
    if missing or unexpected:
        raise ConfigError(
            f"weights do not fit this model: missing {missing[:4]}, unexpected {unexpected[:4]}"
        )
    resampled = []
    merged = {}
    for name, want in target.items():
        have = source[name]
        if have.shape == want.shape:
            merged[name] = have
        elif name in FREQUENCY_INDEXED and have.shape[1:] == want.shape[1:]:
            merged[name] = resample_frequency_rows(have, want.shape[0]).to(want.dtype)
            resampled.append(f"{name} {have.shape[0]}->{want.shape[0]}")
        else:
            raise ConfigError(
                f"weights do not fit this model: {name} is {tuple(have.shape)}, "
                f"the model needs {tuple(want.shape)}"
            )
    model.load_state_dict(merged)
    return resampled
