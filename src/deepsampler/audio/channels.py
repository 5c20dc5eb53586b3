"""Channel policy: fit an input's channel count to the model's."""

from __future__ import annotations

import numpy as np

from deepsampler.errors import AudioInputError


def fit_channels(
    audio: np.ndarray, model_channels: int, *, downmix: bool = False, name: str = "input"
) -> np.ndarray:
    """Adapt ``[c, samples]`` audio to ``[model_channels, samples]``.

    Mono input is duplicated for a multichannel model. More channels than the model takes is an
    error unless ``downmix`` is set, in which case all channels are averaged and the average is
    duplicated to the model's channel count (5.1 and other layouts lose their image this way:
    the honest, layout-free choice).
    """
    channels = audio.shape[0]
    if channels == model_channels:
        return audio
    if channels == 1:
        return np.repeat(audio, model_channels, axis=0)
    if channels > model_channels:
        if not downmix:
            raise AudioInputError(
                f"{name}: has {channels} channels but the model takes {model_channels}; "
                f"pass --downmix to average them (or extract the channels you want first)"
            )
        return np.repeat(audio.mean(axis=0, keepdims=True), model_channels, axis=0)
    raise AudioInputError(
        f"{name}: has {channels} channels but the model takes {model_channels}; "
        f"convert it to mono or to {model_channels} channels first"
    )
