"""Audio DSP and I/O: load/save, resampling, channel policy, STFT, chunked overlap-add."""

from deepsampler.audio.channels import fit_channels
from deepsampler.audio.chunking import ChunkedOverlapAdd, crossfade_window
from deepsampler.audio.io import (
    AUDIO_EXTENSIONS,
    OUTPUT_FORMATS,
    AtomicAudioWriter,
    AudioInfo,
    audio_info,
    commit_all,
    created_dirs,
    ensure_writable_dir,
    iter_blocks,
    read_audio,
    remove_empty_dirs,
    write_audio,
)
from deepsampler.audio.resample import StreamResampler, resample
from deepsampler.audio.stft import STFT
from deepsampler.audio.stft_stream import OverlapAdd, StreamingSTFT

__all__ = [
    "AUDIO_EXTENSIONS",
    "OUTPUT_FORMATS",
    "STFT",
    "AtomicAudioWriter",
    "AudioInfo",
    "ChunkedOverlapAdd",
    "OverlapAdd",
    "StreamResampler",
    "StreamingSTFT",
    "audio_info",
    "commit_all",
    "created_dirs",
    "crossfade_window",
    "ensure_writable_dir",
    "fit_channels",
    "iter_blocks",
    "read_audio",
    "remove_empty_dirs",
    "resample",
    "write_audio",
]
