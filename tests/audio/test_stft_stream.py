"""The streaming STFT pair: framing gives the offline STFT's frames for any block sizes, and
overlap-add of those frames gives back the offline iSTFT, end included (issue 25)."""

from __future__ import annotations

import pytest
import torch

from deepsampler.audio import STFT
from deepsampler.audio.stft_stream import OverlapAdd, StreamingSTFT


def stream_frames(stft: StreamingSTFT, x: torch.Tensor, block: int) -> torch.Tensor:
    buffer, frames = stft.initial_buffer(*x.shape[:2]), []
    for i in range(0, x.shape[-1], block):
        spectra, buffer = stft.frames(torch.cat([buffer, x[..., i : i + block]], -1))
        frames.append(spectra)
    spectra, _ = stft.frames(stft.end(buffer, x.shape[-1]))
    return torch.cat([*frames, spectra], dim=-1)


@pytest.mark.parametrize("n_fft,hop", [(256, 128), (1024, 512), (512, 128)])
@pytest.mark.parametrize("length", [1, 127, 128, 129, 1000, 1537])
def test_framing_equals_the_offline_stft_and_overlap_add_its_inverse(n_fft, hop, length):
    offline = STFT(n_fft, hop)
    x = torch.rand(2, 2, length, generator=torch.Generator().manual_seed(length)) * 2 - 1
    ref = offline(x)
    for block in (1, 100, hop, 4099):
        stft = StreamingSTFT(n_fft, hop, offline.window)
        got = stream_frames(stft, x, block)
        assert got.shape == ref.shape
        assert (got - ref).abs().max().item() < 1e-4
    # a random mask, then overlap-add hop by hop: the offline inverse at every kept sample
    mask = torch.rand(ref.shape, generator=torch.Generator().manual_seed(1))
    ola = OverlapAdd(n_fft, hop, offline.window)
    state = ola.initial_state((2, 2))
    out = [ola.add(ref[..., t] * mask[..., t], state) for t in range(ref.shape[-1])]
    y = torch.cat([*out, ola.finish(state)], dim=-1)[..., :length]
    assert (y - offline.inverse(ref * mask, length)).abs().max().item() < 1e-4


def test_no_frame_yet_gives_an_empty_spectrum():
    stft = StreamingSTFT(256, 128, torch.hann_window(256, periodic=True))
    spectra, buffer = stft.frames(stft.initial_buffer(1, 2))
    assert spectra.shape == (1, 2, 129, 0) and spectra.is_complex()
    assert buffer.shape == (1, 2, 128)
