"""The ``speech`` preset: speech over noise, 16 kHz mono, sources ``speech`` and ``noise``.

Speech is either synthesised by espeak-ng (many languages and voice variants, rates 120-220 wpm,
pitch 20-80, generated sentences) or real read speech from the pool's ``speech/`` files of the
track's split, laid on a timeline with natural pauses. Noise mixes 1-3 kinds with slow level
changes: coloured noise, mains hum, machinery, a music bed, traffic (:mod:`noise`), babble
(espeak-ng talkers or real speech of the same split) and real noise clips from the pool. The SNR
is set on active speech.

The talkers are those of :mod:`~deepsampler.data.synth.voices` and the noise bed is mixed by
:mod:`~deepsampler.data.synth.mixing`, which the siren preset shares.

Audio is float32; stems are ``[1, samples]`` at 16 kHz; levels in dBFS, times in seconds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepsampler.data.levels import db_to_gain, rms_db
from deepsampler.data.real_pool import RealPool
from deepsampler.data.splits import stable_hash
from deepsampler.data.synth import noise as N
from deepsampler.data.synth.common import (
    RenderedTrack,
    TrackPlan,
    add_reverb,
    fit_length,
    require_program,
)
from deepsampler.data.synth.mixing import (
    draw_components,
    limit_peaks,
    load_pool_file,
    pick_files,
    real_files_of,
    rel_path,
    render_components,
    trim_silence,
)
from deepsampler.data.synth.voices import SR, draw_utterance, draw_voice, espeak, estimate_seconds

# --------------------------------------------------------------------------------------------
# the preset

#: Synthetic noise kinds and their weights; pool categories and theirs.
NOISE_WEIGHTS = {"white": 0.4, "pink": 0.8, "brown": 0.6, "coloured": 0.5, "hum": 0.6,
                 "machine": 1.0, "music": 1.0, "traffic": 0.8, "babble": 1.2}  # fmt: skip
NOISE_REAL = {"noise": 3.5, "background": 0.8}


class SpeechPreset:
    """Speech (espeak-ng voices or real read speech) over mixed noises, 16 kHz mono."""

    name = "speech"
    sources = ("speech", "noise")
    sample_rate = SR
    channels = 1
    # the mix of material; a variant preset (speech_real.py) changes these, not the draws
    real_speech_share = 0.5
    noise_weights = NOISE_WEIGHTS
    noise_real = NOISE_REAL
    reverb_share = {"real": 0.15, "espeak": 0.35}

    def check(self) -> None:
        """Raise DeepSamplerError naming the Debian package if espeak-ng is missing."""
        require_program("espeak-ng", "espeak-ng")

    def plan(self, split: str, index: int, seed: int, seconds: float, pool: RealPool) -> TrackPlan:
        """Decide the texts/voices or real files, pauses, noises, SNR (-5..15 dB), speech level
        (-25..-18 dBFS on active speech) and reverb of track ``index`` of ``split``."""
        rng = np.random.default_rng([seed, stable_hash(split), index])
        name = f"speech_{split}_{index:05d}"
        track_seed = int(rng.integers(2**62))
        real_speech = pool.select("speech", split)
        speech: dict[str, Any]
        lead = round(float(rng.uniform(0.0, 0.6)), 3)
        if real_speech and rng.random() < self.real_speech_share:
            files = pick_files(rng, real_speech, seconds * 1.1 + 1, 12 + int(seconds / 4))
            rels = [rel_path(pool, f) for f in files]
            speech = {"source": "real", "files": rels}
            count = len(rels)
            piece = "real-speech:" + rels[0]  # all files are of this split; the first names it
        else:
            talkers = [draw_voice(rng) for _ in range(1 if rng.random() < 0.75 else 2)]
            utts: list[dict[str, Any]] = []
            total = lead
            # plan 30% more speech than the track needs: the estimate is rough, and a short
            # render would otherwise leave silence at the end
            while total < seconds * 1.3 + 0.5:
                who = int(rng.integers(len(talkers))) if len(talkers) > 1 else 0
                text = draw_utterance(rng, talkers[who]["lang"])
                utts.append({"talker": who, "text": text})
                total += estimate_seconds(text, talkers[who]["rate"]) + 0.6
            speech = {"source": "espeak", "talkers": talkers, "utterances": utts}
            count = len(utts)
            piece = f"espeak-speech:{split}:{seed}:{index}"
        speech["lead_s"] = lead
        speech["pauses_s"] = [round(float(p), 3) for p in rng.uniform(0.15, 1.0, count)]
        speech["gains_db"] = [round(float(g), 2) for g in rng.uniform(-3, 3, count)]
        reverb = None
        if rng.random() < self.reverb_share[speech["source"]]:
            reverb = {
                "wet": round(float(rng.uniform(0.08, 0.4)), 3),
                "rt60": round(float(rng.uniform(0.2, 0.9)), 3),
            }
        noise = draw_components(rng, split, seconds, pool, self.noise_weights, self.noise_real)
        params = {
            "speech": speech,
            "reverb": reverb,
            "noise": noise,
            "snr_db": round(float(rng.uniform(-5, 15)), 2),
            "level_db": round(float(rng.uniform(-25, -18)), 2),
        }
        params["real_files"] = sorted(set(real_files_of({"s": speech, "n": noise})))
        return TrackPlan(name, split, track_seed, float(seconds), piece, params)

    def render(self, plan: TrackPlan, pool: RealPool) -> RenderedTrack:
        """Stems ``{"speech": [1, n], "noise": [1, n]}`` float32, n = round(seconds * 16000),
        with the planned SNR on active speech; ``info`` says what was rendered."""
        sr = self.sample_rate
        n = int(round(plan.seconds * sr))
        p = plan.params
        rng_speech = np.random.default_rng([plan.seed, 1])
        rng_noise = np.random.default_rng([plan.seed, 2])
        speech, sinfo = render_speech(p["speech"], rng_speech, n, sr, pool)
        if p["reverb"]:
            speech = add_reverb(speech[None], rng_speech, sr, **p["reverb"])[0]
        mask = N.active_mask(speech, sr)
        speech *= np.float32(db_to_gain(p["level_db"] - N.masked_rms_db(speech, mask)))
        noise, nfacts = render_components(p["noise"], rng_noise, n, sr, pool)
        target = p["level_db"] - p["snr_db"]
        noise *= np.float32(db_to_gain(target - N.masked_rms_db(noise, mask)))
        stems = {"speech": speech[None].astype(np.float32), "noise": noise[None].astype(np.float32)}
        limited = limit_peaks(stems)
        info = {
            **sinfo,
            "snr_db": p["snr_db"],
            "snr_realised_db": round(
                N.masked_rms_db(stems["speech"][0], mask)
                - N.masked_rms_db(stems["noise"][0], mask),
                2,
            ),
            "reverb": p["reverb"],
            "noise": nfacts,
            "noise_kinds": [c["kind"] for c in p["noise"]],
            "active_speech_fraction": round(float(mask.mean()), 3),
            "speech_active_rms_db": round(N.masked_rms_db(stems["speech"][0], mask), 2),
            "peak_limit_db": limited,
            "real_files": p["real_files"],
            "loudness_db": {k: round(rms_db(v), 2) for k, v in stems.items()},
        }
        return RenderedTrack(stems, info)


def render_speech(
    sp: dict[str, Any], rng: np.random.Generator, n: int, sr: int, pool: RealPool
) -> tuple[np.ndarray, dict[str, Any]]:
    """The speech timeline ``[n]`` (before level setting) and facts: utterances (espeak-ng
    segments or trimmed real files, each at its planned relative gain) placed after
    ``lead_s`` with the planned pauses; if the speech runs out early it starts over."""
    utterances: list[np.ndarray] = []
    info: dict[str, Any] = {"speech_source": sp["source"]}
    if sp["source"] == "real":
        for rel in sp["files"]:
            x = trim_silence(load_pool_file(pool, rel, sr), sr)
            # recordings differ in level: equalise on active speech, then apply the jitter
            utterances.append(x * db_to_gain(-N.masked_rms_db(x, N.active_mask(x, sr))))
        info["speech_files"] = sp["files"]
    else:
        queues: dict[int, list[np.ndarray]] = {}
        voices = []
        for i, talker in enumerate(sp["talkers"]):
            texts = [u["text"] for u in sp["utterances"] if u["talker"] == i]
            if not texts:
                queues[i] = []
                voices.append(talker["voice"])
                continue
            said = espeak(texts, talker["voice"], talker["rate"], talker["pitch"], sr)
            queues[i] = said["utterances"]
            voices.append(said["voice"])
        for u in sp["utterances"]:
            if queues[u["talker"]]:
                utterances.append(queues[u["talker"]].pop(0))
        info.update(
            voices=voices,
            rates=[t["rate"] for t in sp["talkers"]],
            pitches=[t["pitch"] for t in sp["talkers"]],
        )
    out = np.zeros(n, np.float32)
    pos = int(sp["lead_s"] * sr)
    pauses, gains = sp["pauses_s"], sp["gains_db"]
    i = 0
    while pos < n and utterances and i < 10 * len(utterances):
        u = utterances[i % len(utterances)] * db_to_gain(gains[i % len(gains)])
        end = min(n, pos + u.size)
        out[pos:end] = u[: end - pos]
        pos = end + int(pauses[i % len(pauses)] * sr)
        i += 1
    info["utterances_placed"] = i
    return fit_length(out, n), info
