"""A synthetic singer: real or synthetic speech re-pitched onto a melody with the WORLD vocoder.

Each note takes the next syllable of the speech: its consonant frames keep their natural length
just before the note, its voiced frames are stretched to the note and their pitch replaced by
the note's (with a glide from the previous note and delayed vibrato). The timbre, words and
consonants are the speaker's; the pitch and timing are the melody's. DESIGN §4: real voices are
the scarcest source, and re-pitched real speech gives a vocal stem with a real timbre.
"""

from __future__ import annotations

import subprocess
import warnings

import numpy as np

from deepsampler.data.synth.fluid import Note

WORLD_RATE = 16000
FRAME_MS = 10.0  # WORLD frame hop: 10 ms halves the analysis cost of 5 ms

WORDS = (
    "love night light heart fire rain away tonight baby dream shine home road time river "
    "dance sky blue gold stay never ever always hold know feel run fly free slow down high "
    "open door morning summer winter cold warm sun moon star city lonely together world "
    "sing song call name wait walk long way back again hello goodbye remember forget take "
    "give little more ocean wave wind whisper shadow silver golden falling rising burning "
    "oh yeah la da na hey ooh"
).split()
ESPEAK_VOICES = (
    "en", "en-us", "en-gb-x-rp", "en+f2", "en+f3", "en+f4", "en+m2", "en+m3", "en+m5",
    "en-us+f5", "en-us+m7", "de", "fr", "es", "it", "pt", "nl", "sv", "pl", "fi", "en+croak",
)  # fmt: skip


def _world():
    with warnings.catch_warnings():  # pyworld imports the deprecated pkg_resources
        warnings.simplefilter("ignore")
        import pyworld

    return pyworld


def singer_available() -> bool:
    try:
        _world()
    except ImportError:
        return False
    return True


def espeak_lyrics(rng: np.random.Generator, n_words: int) -> tuple[np.ndarray, dict]:
    """Synthetic speech of random lyric words: mono float64 ``[n]`` at 16 kHz, and what was
    spoken. Needs ``espeak-ng``."""
    from deepsampler.audio import resample
    from deepsampler.data.synth.common import require_program

    exe = require_program("espeak-ng", "espeak-ng")
    voice = str(rng.choice(ESPEAK_VOICES))
    rate = int(rng.integers(110, 170))
    text = " ".join(rng.choice(WORDS, size=n_words))
    wav = subprocess.run(
        [exe, "-v", voice, "-s", str(rate), "-p", str(int(rng.integers(30, 70))), "--stdout", text],
        capture_output=True,
        check=True,
    ).stdout
    import io

    import soundfile as sf

    audio, sr = sf.read(io.BytesIO(wav), dtype="float32")
    audio = resample(audio[None], sr, WORLD_RATE)[0]
    return audio.astype(np.float64), {"speech": "espeak-ng", "voice": voice, "rate": rate}


def _syllables(voiced: np.ndarray) -> list[tuple[int, int, int]]:
    """(consonant start, vowel start, vowel end) frame indices of each voiced run."""
    out, i, n, last_end = [], 0, len(voiced), 0
    while i < n:
        if voiced[i]:
            j = i
            while j < n and voiced[j]:
                j += 1
            if j - i >= max(2, int(20 / FRAME_MS)):  # shorter voiced blips are not syllables
                out.append((max(last_end, i - int(120 / FRAME_MS)), i, j))  # <= 120 ms of consonant
                last_end = j
            i = j
        else:
            i += 1
    return out


def sing(
    speech: np.ndarray,
    notes: list[Note],
    seconds: float,
    rng: np.random.Generator,
    vibrato_cents: float = 30.0,
) -> np.ndarray:
    """Sing ``notes`` (seconds, MIDI pitch) with the syllables of ``speech`` (mono, 16 kHz).

    Returns mono float32 ``[round(seconds * 16000)]``; silence between notes. Syllables are
    used in order and wrap around when the melody has more notes than the speech syllables.
    """
    pw = _world()
    x = np.ascontiguousarray(speech, dtype=np.float64)
    f0, t = pw.dio(x, WORLD_RATE, f0_floor=70.0, f0_ceil=800.0, frame_period=FRAME_MS)
    f0 = pw.stonemask(x, f0, t, WORLD_RATE)
    sp = pw.cheaptrick(x, f0, t, WORLD_RATE)
    ap = pw.d4c(x, f0, t, WORLD_RATE)
    sylls = _syllables(f0 > 0)
    total = int(round(seconds * 1000 / FRAME_MS)) + 1
    out_f0 = np.zeros(total)
    out_sp = np.full((total, sp.shape[1]), 1e-16)
    out_ap = np.ones((total, ap.shape[1]))
    if not sylls:
        return np.zeros(int(round(seconds * WORLD_RATE)), np.float32)
    prev_hz = None
    rate = rng.uniform(4.5, 6.5)
    for k, note in enumerate(sorted(notes, key=lambda n: n.start)):
        c0, v0, v1 = sylls[k % len(sylls)]
        start = int(round(note.start * 1000 / FRAME_MS))
        length = max(2, int(round(note.duration * 1000 / FRAME_MS)))
        if start >= total:
            break
        cons = v0 - c0
        cs = max(0, start - cons)  # the consonant leads into the note
        out_sp[cs:start] = sp[v0 - (start - cs) : v0]
        out_ap[cs:start] = ap[v0 - (start - cs) : v0]
        end = min(total, start + length)
        idx = np.linspace(v0, v1 - 1, end - start).round().astype(int)
        hz = 440.0 * 2 ** ((note.pitch - 69) / 12)
        tt = np.arange(end - start) * FRAME_MS / 1000
        cents = vibrato_cents * np.clip((tt - 0.2) / 0.3, 0, 1) * np.sin(2 * np.pi * rate * tt)
        contour = hz * 2 ** (cents / 1200)
        if prev_hz is not None:  # a short glide from the previous note
            g = min(len(contour), int(60 / FRAME_MS))
            contour[:g] *= (prev_hz / hz) ** (np.linspace(1, 0, g) ** 2 * 0.5)
        out_f0[start:end] = contour
        out_sp[start:end] = sp[idx]
        out_ap[start:end] = ap[idx]
        fade = min(int(40 / FRAME_MS), end - start)  # release: the envelope falls in 40 ms
        out_sp[end - fade : end] *= np.linspace(1, 0.01, fade)[:, None] ** 2
        prev_hz = hz
    y = pw.synthesize(out_f0, out_sp, out_ap, WORLD_RATE, FRAME_MS)
    n = int(round(seconds * WORLD_RATE))
    y = np.pad(y, (0, max(0, n - len(y))))[:n]
    return np.nan_to_num(y).astype(np.float32)
