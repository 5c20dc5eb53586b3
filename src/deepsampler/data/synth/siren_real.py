"""The ``siren-real`` preset: the siren preset with real material first (issue 27).

A detector and a siren-rt trained on the ``siren`` preset learnt clean synthetic oscillators
(nine sirens in ten) over mostly synthetic backgrounds, and missed recorded sirens on real
streets. This preset keeps every tool of :class:`~deepsampler.data.synth.siren.SirenPreset`
and changes the mix:

* sirens: real recordings in half of the draws (where the split has any): the pool's sirens of
  the track's split and, for the train split, the Debian recordings assigned to training
  (:mod:`deepsampler.data.debian_sirens`: lincity-ng-data's fire-station wail, electronic yelp
  and two-tone), with the siren preset's augmentation (re-pitching, repetition, drive-past);
* synthetic sirens made to sound recorded: the resonances of a horn loudspeaker (one or two
  peaks of +3..+10 dB between 0.8 and 3 kHz), the soft clipping of its amplifier in half of them;
* backgrounds: real recordings (the pool's ``background/`` and ``noise/`` of the split: streets,
  engines, car horns, alarms, birds, speech...) weighted about three to one over the synthetic
  kinds;
* a random equaliser on the siren and on the background separately (:func:`draw_eq`, a tilt and
  sometimes a band limit: the microphone and the distance);
* the siren-to-background ratio -10..+15 dB and street reflections on half the tracks.

Microphone clipping of the whole mixture is left out: it would break ``mixture = sum of stems``,
which training and evaluation rely on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepsampler.data.debian_sirens import (
    DEBIAN_SIRENS,
    DebianSound,
    find_debian_sirens,
    load_debian_sound,
)
from deepsampler.data.levels import db_to_gain, rms_db
from deepsampler.data.real_pool import RealPool
from deepsampler.data.splits import stable_hash
from deepsampler.data.synth import noise as N
from deepsampler.data.synth.common import RenderedTrack, TrackPlan
from deepsampler.data.synth.mixing import limit_peaks, trim_silence
from deepsampler.data.synth.siren import SR, SirenPreset, drive_past_clip
from deepsampler.data.synth.speech_real import apply_eq, draw_eq
from deepsampler.errors import DeepSamplerError

BACKGROUND_WEIGHTS = {"traffic": 1.5, "babble": 0.4, "music": 0.4, "pink": 0.1, "brown": 0.2,
                      "coloured": 0.1, "hum": 0.2, "machine": 0.4}  # fmt: skip
BACKGROUND_REAL = {"background": 6.0, "noise": 4.5}
#: the Debian packages this preset needs for its training split
DEBIAN_PACKAGES = ("lincity-ng-data",)


def draw_colour(rng: np.random.Generator) -> dict[str, Any]:
    """A horn loudspeaker's colouring: 1-2 resonances ``[Hz, dB, octaves]`` and an amplifier
    drive (dB into a tanh; 0 = clean) in half the draws."""
    peaks = [
        [
            round(float(rng.uniform(800, 3000)), 1),
            round(float(rng.uniform(3, 10)), 2),
            round(float(rng.uniform(0.3, 1.0)), 3),
        ]
        for _ in range(int(rng.integers(1, 3)))
    ]
    drive = round(float(rng.uniform(3, 15)), 2) if rng.random() < 0.5 else 0.0
    return {"peaks": peaks, "drive_db": drive}


def apply_colour(x: np.ndarray, sr: int, colour: dict[str, Any]) -> np.ndarray:
    """``x [n]`` through the resonances (Gaussian bumps in log frequency, zero phase) and the
    drive of ``colour`` (:func:`draw_colour`); the RMS is kept. float32 ``[n]``."""
    if not np.any(x):
        return x
    spec = np.fft.rfft(x.astype(np.float64))
    f = np.maximum(np.fft.rfftfreq(len(x), 1 / sr), 1.0)
    gain_db = np.zeros_like(f)
    for hz, db, octaves in colour["peaks"]:
        gain_db += db * np.exp(-0.5 * (np.log2(f / hz) / octaves) ** 2)
    y = np.fft.irfft(spec * 10 ** (gain_db / 20), n=len(x))
    if colour["drive_db"] > 0:
        peak = np.max(np.abs(y)) + 1e-12
        g = db_to_gain(colour["drive_db"])
        y = np.tanh(g * y / peak) * peak / np.tanh(g)
    y *= (np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-12) / (np.sqrt(np.mean(y**2)) + 1e-12)
    return y.astype(np.float32)


class SirenRealPreset(SirenPreset):
    """Real sirens and real streets first, recorded-sounding synthetic sirens, equalised
    stems (see the module docstring)."""

    name = "siren-real"
    real_share = 0.5
    reverb_share = 0.5
    sbr_range = (-10.0, 15.0)
    background_weights = BACKGROUND_WEIGHTS
    background_real = BACKGROUND_REAL

    def check(self) -> None:
        """The siren preset's check, and the Debian packages of the training sirens."""
        super().check()
        found, reasons = find_debian_sirens("train")
        wanted = [s for s in DEBIAN_SIRENS if s.split == "train"]
        # every file, not just the package: a missing one would change the plans' draws
        if found != wanted or {s.package for s in found} != set(DEBIAN_PACKAGES):
            raise DeepSamplerError(
                "the siren-real preset trains on real sirens from Debian: " + "; ".join(reasons)
            )

    def debian_sirens(self, split: str) -> tuple[DebianSound, ...]:
        """The installed Debian sirens assigned to ``split`` (training only: none elsewhere)."""
        return tuple(find_debian_sirens(split)[0]) if split == "train" else ()

    def plan(self, split: str, index: int, seed: int, seconds: float, pool: RealPool) -> TrackPlan:
        """The siren preset's plan with this preset's mix, plus a colouring per synthetic
        siren and the two equalisers, drawn from a generator of their own."""
        plan = super().plan(split, index, seed, seconds, pool)
        rng = np.random.default_rng([seed, stable_hash(split), index, 27])
        sirens = [
            s if s["kind"] == "real" else {**s, "colour": draw_colour(rng)}
            for s in plan.params["sirens"]
        ]
        params: dict[str, Any] = {
            **plan.params,
            "sirens": sirens,
            "eq": {"siren": draw_eq(rng), "background": draw_eq(rng)},
        }
        return TrackPlan(plan.name, plan.split, plan.seed, plan.seconds, plan.piece, params)

    def render_siren(self, s: dict[str, Any], n: int, sr: int, pool: RealPool) -> np.ndarray:
        """A Debian recording driven past, or the siren preset's siren, coloured if planned."""
        if s["kind"] == "real" and "debian" in s:
            package, path = s["debian"].split(":", 1)
            sound = next(d for d in self.debian_sirens("train") if d.path == path)
            assert sound.package == package
            x = trim_silence(load_debian_sound(sound, sr), sr)
            return drive_past_clip(x, s, n, sr)
        x = super().render_siren(s, n, sr, pool)
        return apply_colour(x, sr, s["colour"]) if "colour" in s else x

    def render(self, plan: TrackPlan, pool: RealPool) -> RenderedTrack:
        """The siren preset's stems, each equalised; the ratio is re-set on the siren's active
        part after the equalisers (they change the levels) and the peaks limited again."""
        out = super().render(plan, pool)
        p = plan.params
        siren = apply_eq(out.stems["siren"][0], SR, p["eq"]["siren"])
        background = apply_eq(out.stems["background"][0], SR, p["eq"]["background"])
        mask = N.active_mask(siren, SR)
        sbr = p["sbr_db"]
        siren_db, bg_db = p["level_db"] + min(sbr, 0.0), p["level_db"] - max(sbr, 0.0)
        if mask.any():
            siren *= np.float32(db_to_gain(siren_db - N.masked_rms_db(siren, mask)))
            background *= np.float32(db_to_gain(bg_db - N.masked_rms_db(background, mask)))
        stems = {"siren": siren[None], "background": background[None]}
        limited = limit_peaks(stems)
        info = {
            **out.info,
            "eq": p["eq"],
            "colours": [s.get("colour") for s in p["sirens"]],
            "peak_limit_db": limited,
            "loudness_db": {k: round(rms_db(v), 2) for k, v in stems.items()},
            "sbr_realised_db": round(
                N.masked_rms_db(stems["siren"][0], mask)
                - N.masked_rms_db(stems["background"][0], mask),
                2,
            )
            if mask.any()
            else None,
        }
        return RenderedTrack(stems, info)
