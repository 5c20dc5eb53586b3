"""The ``speech-real`` preset: the speech preset with real material first (issue 26).

``speech-rt`` trained on the ``speech`` preset passed the shared real-speech set (steady noises)
but gained a third of DeepFilterNet3's SI-SDR on real speech over real everyday noise. In that
corpus half the speech was espeak-ng and two thirds of the noise layers synthetic. This preset
keeps every tool of :class:`~deepsampler.data.synth.speech.SpeechPreset` and changes the mix:

* speech: real read speech from the pool (every speaker of the track's split) in 80 % of the
  tracks, espeak-ng's many voices in the rest;
* noise: real recordings (the pool's ``noise/`` and ``background/``: animals, tools, household,
  impacts, streets) weighted about three to one over the synthetic kinds, among which the steady
  ones (white, pink, brown, coloured noise, hum) are the rarest; babble stays (real talkers of the
  split);
* reverberation on a quarter of the real-speech tracks;
* a random equaliser on speech and on noise separately (a tilt of -6..+6 dB across the band and,
  in one track of five, the band limit of a phone or a small loudspeaker), so that neither the
  talker's microphone nor the noise's colour gives the source away.

SNR (-5..+15 dB on active speech) and levels are drawn as in the speech preset.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepsampler.data.levels import db_to_gain, rms_db
from deepsampler.data.real_pool import RealPool
from deepsampler.data.splits import stable_hash
from deepsampler.data.synth import noise as N
from deepsampler.data.synth.common import RenderedTrack, TrackPlan
from deepsampler.data.synth.mixing import limit_peaks
from deepsampler.data.synth.speech import SR, SpeechPreset

NOISE_WEIGHTS = {"white": 0.05, "pink": 0.1, "brown": 0.1, "coloured": 0.1, "hum": 0.15,
                 "machine": 0.5, "music": 0.6, "traffic": 0.5, "babble": 1.0}  # fmt: skip
NOISE_REAL = {"noise": 6.0, "background": 1.5}


def draw_eq(rng: np.random.Generator) -> dict[str, float]:
    """A tilt (dB from 100 Hz to 8 kHz, linear in log frequency) and, in one draw of five, a
    band limit (high-pass 200-400 Hz, low-pass 3.4-6 kHz)."""
    eq = {"tilt_db": round(float(rng.uniform(-6, 6)), 2)}
    if rng.random() < 0.2:
        eq["highpass_hz"] = round(float(rng.uniform(200, 400)), 1)
        eq["lowpass_hz"] = round(float(rng.uniform(3400, 6000)), 1)
    return eq


def apply_eq(x: np.ndarray, sr: int, eq: dict[str, float]) -> np.ndarray:
    """``x [n]`` through the zero-phase equaliser ``eq`` (:func:`draw_eq`), in the frequency
    domain over the whole track (a fixed filter: tracks are seconds long)."""
    spec = np.fft.rfft(x.astype(np.float64))
    f = np.fft.rfftfreq(len(x), 1 / sr)
    octaves = np.log2(np.clip(f, 100, 8000) / 100) / np.log2(80)  # 0 at 100 Hz, 1 at 8 kHz
    gain_db = eq["tilt_db"] * (octaves - 0.5)  # level at the band's middle unchanged
    gain = 10 ** (gain_db / 20)
    if "highpass_hz" in eq:
        # fourth-order Butterworth magnitudes: steep enough to sound like a phone
        gain = gain / np.sqrt(1 + (eq["highpass_hz"] / np.maximum(f, 1e-3)) ** 8)
        gain = gain / np.sqrt(1 + (f / eq["lowpass_hz"]) ** 8)
    return np.fft.irfft(spec * gain, n=len(x)).astype(np.float32)


class SpeechRealPreset(SpeechPreset):
    """Real speech and real noise first, with equalisation (see the module docstring)."""

    name = "speech-real"
    real_speech_share = 0.8
    noise_weights = NOISE_WEIGHTS
    noise_real = NOISE_REAL
    reverb_share = {"real": 0.25, "espeak": 0.35}

    def plan(self, split: str, index: int, seed: int, seconds: float, pool: RealPool) -> TrackPlan:
        """The speech preset's plan (its own draws, this mix) plus the equalisers, drawn from
        a generator of their own so the rest of the plan is as the parent draws it."""
        plan = super().plan(split, index, seed, seconds, pool)
        rng = np.random.default_rng([seed, stable_hash(split), index, 26])
        params: dict[str, Any] = {
            **plan.params,
            "eq": {"speech": draw_eq(rng), "noise": draw_eq(rng)},
        }
        return TrackPlan(plan.name, plan.split, plan.seed, plan.seconds, plan.piece, params)

    def render(self, plan: TrackPlan, pool: RealPool) -> RenderedTrack:
        """The speech preset's stems with each equalised; the SNR is re-set on active speech
        after the equalisers (they change the levels) and the peaks limited again."""
        out = super().render(plan, pool)
        speech = apply_eq(out.stems["speech"][0], SR, plan.params["eq"]["speech"])
        noise = apply_eq(out.stems["noise"][0], SR, plan.params["eq"]["noise"])
        mask = N.active_mask(speech, SR)
        p = plan.params
        speech *= np.float32(db_to_gain(p["level_db"] - N.masked_rms_db(speech, mask)))
        noise *= np.float32(db_to_gain(p["level_db"] - p["snr_db"] - N.masked_rms_db(noise, mask)))
        stems = {"speech": speech[None], "noise": noise[None]}
        limited = limit_peaks(stems)
        info = {
            **out.info,
            "eq": p["eq"],
            "peak_limit_db": limited,
            "speech_active_rms_db": round(N.masked_rms_db(stems["speech"][0], mask), 2),
            "loudness_db": {k: round(rms_db(v), 2) for k, v in stems.items()},
            "snr_realised_db": round(
                N.masked_rms_db(stems["speech"][0], mask)
                - N.masked_rms_db(stems["noise"][0], mask),
                2,
            ),
        }
        return RenderedTrack(stems, info)
