"""Rendering note lists with FluidSynth and General MIDI SoundFonts, one part at a time.

Each part is rendered alone so its stem is exact. The synthesiser's own reverb and chorus are
off: rooms are added per stem afterwards, where the corpus controls them. Output is float32
(``fluid_synth_write_float``), so quiet parts keep their full resolution.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepsampler.errors import DeepSamplerError

#: SoundFonts in the order of preference, with the Debian package that installs each.
SOUNDFONTS = {
    "musescore": ("/usr/share/sounds/sf3/MuseScore_General.sf3", "musescore-general-soundfont"),
    "fluidr3": ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "fluid-soundfont-gm"),
    "timgm6mb": ("/usr/share/sounds/sf2/TimGM6mb.sf2", "timgm6mb-soundfont"),
}
#: Real recorded drum kits as SoundFonts (one kit on preset 0 each).
DRUM_SOUNDFONTS = {
    "avl_black_pearl": ("/usr/share/sounds/sf2/Black_Pearl_4_LV2.sf2", "avldrums.lv2-soundfont"),
    "avl_red_zeppelin": (
        "/usr/share/sounds/sf2/Red_Zeppelin_4_LV2.sf2",
        "avldrums.lv2-soundfont",
    ),
}
#: Notes shorter than this are dropped: a zero-length note can hang FluidSynth's voice forever.
MIN_NOTE_SECONDS = 0.06
FLUID_BLOCK = 64


@dataclass(frozen=True)
class Note:
    """One note: start and duration in seconds, MIDI pitch (0-127), velocity (1-127)."""

    start: float
    duration: float
    pitch: int
    velocity: int


def available_soundfonts() -> dict[str, str]:
    """Names and paths of the installed melodic SoundFonts."""
    return {k: p for k, (p, _) in SOUNDFONTS.items() if Path(p).is_file()}


def available_drum_soundfonts() -> dict[str, str]:
    return {k: p for k, (p, _) in DRUM_SOUNDFONTS.items() if Path(p).is_file()}


def check_fluidsynth() -> None:
    """Raise a one-line error naming what to install if FluidSynth or every SoundFont is missing."""
    try:
        import fluidsynth  # noqa: F401
    except ImportError as exc:
        raise DeepSamplerError(
            "FluidSynth is not usable: install 'sudo apt-get install fluidsynth' and "
            "\"pip install 'deepsampler[data]'\" (or run 'scripts/setup.sh data')"
        ) from exc
    if not available_soundfonts():
        pkgs = " ".join(p for _, p in SOUNDFONTS.values())
        raise DeepSamplerError(f"no General MIDI SoundFont found: sudo apt-get install {pkgs}")


class FluidRenderer:
    """A FluidSynth instance that loads SoundFonts on first use and renders one part at a time.

    One renderer per worker process; SoundFonts stay loaded between tracks (loading MuseScore
    General takes seconds, rendering a part takes milliseconds).
    """

    def __init__(self, sample_rate: int = 44100):
        import fluidsynth

        self.sample_rate = sample_rate
        # settings must be given before the synth exists: set later, reverb and chorus stay on
        # (and the chorus LFO makes a render depend on the absolute time it starts at)
        settings = {"synth.reverb.active": 0, "synth.chorus.active": 0, "synth.polyphony": 512}
        self._synth = fluidsynth.Synth(samplerate=float(sample_rate), gain=0.4, **settings)
        self._sfids: dict[str, int] = {}
        lib = fluidsynth._fl  # the ctypes handle pyfluidsynth opened
        self._write_float = lib.fluid_synth_write_float
        self._write_float.argtypes = [ctypes.c_void_p, ctypes.c_int] + [
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int,
        ] * 2
        self._write_float.restype = ctypes.c_int

    def _sfid(self, path: str) -> int:
        if path not in self._sfids:
            sfid = self._synth.sfload(path)
            if sfid < 0:
                raise DeepSamplerError(f"{path}: FluidSynth could not load this SoundFont")
            self._sfids[path] = sfid
        return self._sfids[path]

    def _render(self, frames: int) -> np.ndarray:
        out = np.zeros((2, frames), dtype=np.float32)
        ptr_l = out[0].ctypes.data_as(ctypes.c_void_p)
        ptr_r = out[1].ctypes.data_as(ctypes.c_void_p)
        done = 0
        while done < frames:
            n = min(8192, frames - done)
            off = ctypes.sizeof(ctypes.c_float) * done
            self._write_float(
                self._synth.synth,
                n,
                ctypes.c_void_p(ptr_l.value + off),
                0,
                1,
                ctypes.c_void_p(ptr_r.value + off),
                0,
                1,
            )
            done += n
        return out

    def render(
        self,
        notes: list[Note],
        soundfont: str,
        program: int,
        seconds: float,
        drums: bool = False,
        bank: int | None = None,
    ) -> np.ndarray:
        """Render ``notes`` with one program to stereo ``[2, round(seconds*sr)]`` float32.

        ``drums`` plays on MIDI channel 10 (bank 128), where pitches pick kit pieces.
        Notes shorter than ``MIN_NOTE_SECONDS`` are dropped and the render is capped at
        ``seconds``: nothing sounds past the end.
        """
        synth, sr = self._synth, self.sample_rate
        chan = 9 if drums else 0
        synth.system_reset()
        synth.program_select(
            chan, self._sfid(soundfont), 128 if drums and bank is None else (bank or 0), program
        )
        total = int(round(seconds * sr))
        # FluidSynth computes audio in blocks of 64 samples and applies events at block starts;
        # rendering a whole number of blocks keeps every render starting on a block boundary,
        # so a part sounds the same whatever was rendered before it in this process.
        padded = -(-total // FLUID_BLOCK) * FLUID_BLOCK
        events: list[tuple[int, int, int, int]] = []  # (sample, order, pitch, velocity)
        for n in notes:
            if n.duration < MIN_NOTE_SECONDS and not drums:
                continue
            start = int(round(n.start * sr))
            if start >= total or start < 0:
                continue
            end = min(total, int(round((n.start + max(n.duration, MIN_NOTE_SECONDS)) * sr)))
            pitch = int(np.clip(n.pitch, 0, 127))
            vel = int(np.clip(n.velocity, 1, 127))
            events.append((start, 1, pitch, vel))
            events.append((end, 0, pitch, 0))  # note-offs before note-ons at the same sample
        events.sort()
        chunks, pos = [], 0
        for sample, kind, pitch, vel in events:
            if sample > pos:
                chunks.append(self._render(sample - pos))
                pos = sample
            if kind:
                synth.noteon(chan, pitch, vel)
            else:
                synth.noteoff(chan, pitch)
        if padded > pos:
            chunks.append(self._render(padded - pos))
        synth.all_sounds_off(chan)
        self._render(16 * FLUID_BLOCK)  # let the killed voices fade out inside the synth
        audio = np.concatenate(chunks, axis=1)
        return audio[:, :total]
