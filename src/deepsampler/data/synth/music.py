"""The ``music4`` preset: vocals, drums, bass and other, 44.1 kHz stereo.

A track is an arrangement (generated song or music21 score, see ``arrange``) whose parts are
rendered one at a time: pitched parts with FluidSynth on a randomly chosen General MIDI
SoundFont and program from the role's curated list, vocals sometimes by the synthetic singer
(re-pitched real or espeak-ng speech), drums on a real sampled Hydrogen kit or a SoundFont kit.
Each stem gets its own pan, level and share of one room's reverb.
"""

from __future__ import annotations

import numpy as np

from deepsampler.data.levels import db_to_gain, rms_db
from deepsampler.data.real_pool import RealPool, load_real
from deepsampler.data.splits import split_of, stable_hash
from deepsampler.data.synth import arrange, drums, fluid, singer
from deepsampler.data.synth.common import RenderedTrack, TrackPlan, add_shared_reverb, fit_length
from deepsampler.sources import MUSIC4_SOURCES

# General MIDI programs (0-based) per role and part kind.
# Vocals by family, drawn with these weights: the synthetic singer carries words and real
# timbre; voice programs are sung vowels; leads and winds (which real songs put in "other")
# stand for melody instruments and stay rare so the model learns that vocals are voices.
VOCAL_FAMILIES = {"singer": 0.5, "voice": 0.3, "lead": 0.1, "wind": 0.1}
VOCAL_PROGRAMS = {
    "voice": {52: "choir aahs", 53: "voice oohs", 54: "synth voice", 85: "voice lead",
              91: "choir pad"},
    "lead": {80: "square lead", 81: "saw lead", 82: "calliope lead", 84: "charang lead"},
    "wind": {56: "trumpet", 64: "soprano sax", 65: "alto sax", 68: "oboe", 71: "clarinet",
             73: "flute", 79: "ocarina"},
}  # fmt: skip
BASS_PROGRAMS = {
    32: "acoustic bass", 33: "finger bass", 34: "pick bass", 35: "fretless bass",
    36: "slap bass 1", 37: "slap bass 2", 38: "synth bass 1", 39: "synth bass 2",
    43: "contrabass", 58: "tuba", 70: "bassoon",
}  # fmt: skip
OTHER_PROGRAMS = {
    "comp": {0: "grand piano", 1: "bright piano", 2: "electric grand", 4: "rhodes",
             5: "chorused piano", 6: "harpsichord", 7: "clavinet", 16: "drawbar organ",
             17: "percussive organ", 18: "rock organ", 24: "nylon guitar", 25: "steel guitar",
             26: "jazz guitar", 27: "clean guitar", 28: "muted guitar", 29: "overdriven guitar",
             30: "distortion guitar", 11: "vibraphone", 12: "marimba"},
    "pad": {48: "strings", 49: "slow strings", 50: "synth strings", 88: "new age pad",
            89: "warm pad", 90: "polysynth pad", 94: "halo pad", 95: "sweep pad",
            19: "church organ", 16: "drawbar organ", 61: "brass section", 0: "grand piano"},
    "arp": {0: "grand piano", 4: "rhodes", 8: "celesta", 10: "music box", 11: "vibraphone",
            24: "nylon guitar", 25: "steel guitar", 46: "harp", 81: "saw lead", 87: "bass+lead",
            6: "harpsichord", 13: "xylophone"},
    "counter": {40: "violin", 41: "viola", 42: "cello", 60: "french horn", 57: "trombone",
                61: "brass section", 62: "synth brass", 29: "overdriven guitar",
                30: "distortion guitar", 27: "clean guitar", 4: "rhodes", 18: "rock organ"},
    "voice": {40: "violin", 41: "viola", 42: "cello", 48: "strings", 19: "church organ",
              0: "grand piano", 60: "french horn", 57: "trombone", 46: "harp", 24: "nylon guitar",
              16: "drawbar organ", 89: "warm pad"},
}  # fmt: skip
# GM drum kits: standard, room, power, electronic, 808, jazz, brush
DRUM_KIT_PROGRAMS = (0, 8, 16, 24, 25, 32, 40)
SOUNDFONT_WEIGHTS = {"musescore": 0.45, "fluidr3": 0.4, "timgm6mb": 0.15}


class _Resources:
    """Per-process rendering state: the FluidSynth instance and decoded drum samples."""

    def __init__(self, sample_rate: int):
        self.fluid = fluid.FluidRenderer(sample_rate)
        self.samples = drums.SampleCache(sample_rate)
        self.soundfonts = fluid.available_soundfonts()
        self.drum_soundfonts = fluid.available_drum_soundfonts()
        self.kits = drums.hydrogen_kits()
        self.singer = singer.singer_available()


class MusicPreset:
    name = "music4"
    sources = MUSIC4_SOURCES
    sample_rate = 44100
    channels = 2

    def __init__(self, score_fraction: float = 0.45):
        self.score_fraction = score_fraction
        self._res: _Resources | None = None
        self._pieces: dict[str, list[str]] | None = None

    def check(self) -> None:
        fluid.check_fluidsynth()
        try:
            import music21  # noqa: F401
        except ImportError as exc:
            raise_missing("music21", exc)

    def _resources(self) -> _Resources:
        if self._res is None:
            self._res = _Resources(self.sample_rate)
        return self._res

    def _pieces_by_split(self) -> dict[str, list[str]]:
        if self._pieces is None:
            self._pieces = {"train": [], "valid": [], "test": []}
            for rel in arrange.score_pieces():
                self._pieces[split_of(f"music21:{rel}")].append(rel)
        return self._pieces

    def plan(self, split: str, index: int, seed: int, seconds: float, pool: RealPool) -> TrackPlan:
        """Choose the material of track ``index``: a score of this split or a generated song."""
        rng = np.random.default_rng([seed, stable_hash(split), index])
        track_seed = int(rng.integers(0, 2**31))
        pieces = self._pieces_by_split()[split]
        if pieces and rng.random() < self.score_fraction:
            rel = pieces[int(rng.integers(0, len(pieces)))]
            return TrackPlan(
                f"music4_{split}_{index:05d}", split, track_seed, seconds, f"music21:{rel}",
                {"source": "score", "score": rel},
            )  # fmt: skip
        return TrackPlan(
            f"music4_{split}_{index:05d}", split, track_seed, seconds,
            f"generated:{seed}:{split}:{index}", {"source": "generated"},
        )  # fmt: skip

    def _soundfont(self, rng: np.random.Generator) -> tuple[str, str]:
        names = [n for n in SOUNDFONT_WEIGHTS if n in self._resources().soundfonts]
        w = np.array([SOUNDFONT_WEIGHTS[n] for n in names])
        name = names[int(rng.choice(len(names), p=w / w.sum()))]
        return name, self._resources().soundfonts[name]

    def render(self, plan: TrackPlan, pool: RealPool) -> RenderedTrack:
        rng = np.random.default_rng(plan.seed)
        sr, seconds = self.sample_rate, plan.seconds
        n = int(round(seconds * sr))
        if plan.params["source"] == "score":
            arr = arrange.score_arrangement(rng, plan.params["score"], seconds)
        else:
            arr = arrange.generated_song(rng, seconds)
        stems = {s: np.zeros((2, n), np.float32) for s in self.sources}
        parts_info = []
        jitter = float(rng.uniform(3, 15))
        for part in arr.parts:
            audio, desc = self._render_part(part, arr, rng, jitter, seconds, plan.split, pool)
            audio = fit_length(audio, n)
            if not np.isfinite(audio).all():
                raise RuntimeError(f"{plan.name}: non-finite audio from {desc}")
            if part.role != "drums":  # the kit pans its own pieces
                audio = _balance(
                    audio,
                    float(
                        rng.uniform(-0.6, 0.6) if part.role == "other" else rng.uniform(-0.15, 0.15)
                    ),
                )
            level = rms_db(audio)
            if level > -100:
                target = -20 + float(rng.uniform(-4, 2))
                audio = audio * db_to_gain(target - level)
            stems[part.role] += audio
            parts_info.append({"role": part.role, "kind": part.kind, **desc})
        rt60 = float(rng.uniform(0.3, 2.2))
        # bass stays dry (as in most mixes), other stems are dry a quarter of the time
        # (close-miked, direct-injected); the rest share one room with their own send
        room = {
            s: 0.0
            if s == "bass" or rng.random() < 0.25
            else round(float(rng.uniform(0.05, 0.35)), 3)
            for s in self.sources
        }
        stems = add_shared_reverb(stems, room, rng, sr, rt60)
        for s in self.sources:
            level = rms_db(stems[s])
            if level > -100:  # one level per stem, then a random balance between stems
                stems[s] *= db_to_gain(-20 + float(rng.uniform(-5, 3)) - level)
        info = {
            "source": arr.source, "style": arr.style, "tempo": round(arr.tempo, 1),
            "key": arr.key, "beats_per_bar": arr.beats_per_bar, "swing": round(arr.swing, 3),
            "parts": parts_info, "rt60": round(rt60, 2), "reverb_send": room,
        }  # fmt: skip
        return RenderedTrack(stems, info)

    def _render_part(self, part, arr, rng, jitter, seconds, split, pool):
        res = self._resources()
        if part.role == "drums":
            use_hydrogen = res.kits and rng.random() < 0.6
            if use_hydrogen:
                name = sorted(res.kits)[int(rng.integers(0, len(res.kits)))]
                audio = drums.render_hydrogen(part.hits, res.kits[name], res.samples, seconds, rng)
                return audio, {"instrument": f"hydrogen:{name}"}
            notes = drums.hits_to_notes(part.hits)
            if res.drum_soundfonts and rng.random() < 0.35:
                name = sorted(res.drum_soundfonts)[int(rng.integers(0, len(res.drum_soundfonts)))]
                audio = res.fluid.render(
                    notes, res.drum_soundfonts[name], 0, seconds, drums=True, bank=0
                )
                return audio, {"instrument": f"sf2:{name}"}
            sf_name, sf_path = self._soundfont(rng)
            prog = int(rng.choice(DRUM_KIT_PROGRAMS))
            audio = res.fluid.render(notes, sf_path, prog, seconds, drums=True)
            return audio, {"instrument": f"{sf_name}:kit{prog}"}
        notes = arrange.to_seconds(part.notes, arr.tempo, arr.swing, rng, jitter)
        if part.role == "vocals":
            families = [f for f in VOCAL_FAMILIES if f != "singer" or res.singer]
            w = np.array([VOCAL_FAMILIES[f] for f in families])
            family = families[int(rng.choice(len(families), p=w / w.sum()))]
            if family == "singer":
                return self._sing(notes, rng, seconds, split, pool)
            table = VOCAL_PROGRAMS[family]
        elif part.role == "bass":
            table = BASS_PROGRAMS
        else:
            table = OTHER_PROGRAMS[part.kind if part.kind in OTHER_PROGRAMS else "comp"]
        prog = int(rng.choice(list(table)))
        sf_name, sf_path = self._soundfont(rng)
        audio = res.fluid.render(notes, sf_path, prog, seconds)
        return audio, {"instrument": f"{sf_name}:{prog}:{table[prog]}"}

    def _sing(self, notes, rng, seconds, split, pool):
        from deepsampler.audio import resample

        speech_files = pool.select("speech", split) if pool else []
        if speech_files and rng.random() < 0.6:
            picks = rng.choice(len(speech_files), size=min(2, len(speech_files)), replace=False)
            speech = np.concatenate(
                [load_real(speech_files[int(i)], singer.WORLD_RATE) for i in picks]
            )
            speech = speech[: 8 * singer.WORLD_RATE]  # syllables wrap around; analysis is costly
            rel = [str(speech_files[int(i)].path.relative_to(pool.root)) for i in picks]
            what = {"instrument": "singer:real-speech", "speech": rel}
        else:
            speech, meta = singer.espeak_lyrics(rng, int(min(16, max(8, len(notes)))))
            what = {"instrument": f"singer:espeak:{meta['voice']}"}
        mono = singer.sing(speech, notes, seconds, rng)
        audio = resample(mono[None], singer.WORLD_RATE, self.sample_rate)
        return np.repeat(audio, 2, axis=0), what


def _balance(audio: np.ndarray, position: float) -> np.ndarray:
    """Constant-power balance of a stereo ``[2, n]`` part; ``position`` in [-1, 1]."""
    theta = (position + 1) * np.pi / 4
    return audio * (np.array([np.cos(theta), np.sin(theta)])[:, None] * np.sqrt(2)).astype(
        np.float32
    )


def raise_missing(module: str, exc: Exception) -> None:
    from deepsampler.errors import DeepSamplerError

    raise DeepSamplerError(
        f"the corpus synthesiser needs the '{module}' package: pip install 'deepsampler[data]' "
        f"(or run 'scripts/setup.sh data')"
    ) from exc
