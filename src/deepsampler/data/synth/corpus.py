"""Rendering a whole corpus in the MUSDB18-HQ layout, in parallel, resumably.

``DIR/{train,valid,test}/<track>/{mixture,<source>...}.wav`` plus ``track.json`` per track
(the plan and what was rendered) and ``DIR/corpus.json`` (settings, per-split hours, instrument
histogram, loudness per source). A track is written into ``DIR/<split>/.partial-<track>`` and
renamed when complete, so an interrupted run leaves only whole tracks; the next run with the
same settings keeps them and renders the rest.

Stems are written as 16-bit PCM and the mixture is the integer sum of the quantised stems, so
``mixture == sum(stems)`` holds exactly, sample for sample, when the files are read back.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from deepsampler.data.levels import db_to_gain, rms_db
from deepsampler.data.real_pool import RealPool
from deepsampler.data.splits import SPLIT_FRACTIONS, SPLITS
from deepsampler.data.synth.common import RenderedTrack, TrackPlan
from deepsampler.errors import DeepSamplerError

PRESET_NAMES = ("music4", "speech", "speech-real", "siren", "siren-real")
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
FORMAT_VERSION = 1


def make_preset(name: str):
    """A preset object by name (imported lazily: each pulls in its own synthesis tools)."""
    if name == "music4":
        from deepsampler.data.synth.music import MusicPreset

        return MusicPreset()
    if name == "speech":
        from deepsampler.data.synth.speech import SpeechPreset

        return SpeechPreset()
    if name == "speech-real":
        from deepsampler.data.synth.speech_real import SpeechRealPreset

        return SpeechRealPreset()
    if name == "siren":
        from deepsampler.data.synth.siren import SirenPreset

        return SirenPreset()
    if name == "siren-real":
        from deepsampler.data.synth.siren_real import SirenRealPreset

        return SirenRealPreset()
    raise DeepSamplerError(f"unknown corpus preset '{name}': choose one of {list(PRESET_NAMES)}")


@dataclass(frozen=True)
class SynthSettings:
    """What decides a corpus' content (the worker count does not)."""

    preset: str
    hours: float
    seed: int = 0
    track_seconds: float = 30.0
    real_pool: str | None = None  # path of the real-recordings pool, None = synthetic only

    def __post_init__(self):
        if self.preset not in PRESET_NAMES:
            raise DeepSamplerError(f"unknown preset '{self.preset}': choose {list(PRESET_NAMES)}")
        if not (self.hours > 0 and np.isfinite(self.hours)):
            raise DeepSamplerError(f"--hours must be positive, got {self.hours}")
        if not (1.0 <= self.track_seconds <= 600):
            raise DeepSamplerError(
                f"--track-seconds must be between 1 and 600, got {self.track_seconds}"
            )


def plan_corpus(settings: SynthSettings, preset, pool: RealPool) -> list[TrackPlan]:
    """Plans of every track: ``hours`` split 80/10/10 (at least one track per split)."""
    total = max(len(SPLITS), int(round(settings.hours * 3600 / settings.track_seconds)))
    counts = {s: max(1, int(round(total * SPLIT_FRACTIONS[s]))) for s in ("valid", "test")}
    counts["train"] = max(1, total - counts["valid"] - counts["test"])
    plans = [
        preset.plan(split, i, settings.seed, settings.track_seconds, pool)
        for split in SPLITS
        for i in range(counts[split])
    ]
    owner: dict[str, str] = {}
    for p in plans:
        if owner.setdefault(p.piece, p.split) != p.split:
            raise RuntimeError(f"piece {p.piece} planned in {owner[p.piece]} and {p.split}")
    return plans


def quantise_mix(
    stems: dict[str, np.ndarray], rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], np.ndarray, float]:
    """Scale all stems by one gain (mixture RMS drawn in -24..-14 dBFS, peak kept under -0.5
    dBFS), quantise each to int16 and sum them: ``(int16 stems, int16 mixture, gain)``."""
    mix = sum(stems.values())
    level = rms_db(mix)
    gain = db_to_gain(float(rng.uniform(-24, -14)) - level) if level > -100 else 1.0
    peak = float(np.max(np.abs(mix))) * gain
    limit = 0.944 - 0.5 * len(stems) / 32767  # -0.5 dBFS, less the rounding of every stem
    if peak > limit:
        gain *= limit / peak
    q = {s: np.round(np.clip(x * gain, -1, 1) * 32767).astype(np.int32) for s, x in stems.items()}
    mixture = sum(q.values())
    if np.max(np.abs(mixture)) > 32767:  # cannot happen with the limit above; never clip
        raise RuntimeError("mixture exceeds 16 bits after quantisation")
    return {s: v.astype(np.int16) for s, v in q.items()}, mixture.astype(np.int16), gain


def write_track(
    out: Path, plan: TrackPlan, rendered: RenderedTrack, sources: tuple[str, ...], sr: int
) -> dict[str, Any]:
    """Write one track atomically and check it; returns its ``track.json`` record."""
    rng = np.random.default_rng([plan.seed, 7])
    missing = [s for s in sources if s not in rendered.stems]
    if missing:
        raise RuntimeError(f"{plan.name}: preset returned no stem for {missing}")
    n = int(round(plan.seconds * sr))
    for s in sources:
        x = rendered.stems[s]
        if x.shape[-1] != n or not np.isfinite(x).all():
            raise RuntimeError(f"{plan.name}: stem {s} has shape {x.shape} or non-finite values")
    stems16, mix16, gain = quantise_mix({s: rendered.stems[s] for s in sources}, rng)
    final = out / plan.split / plan.name
    partial = out / plan.split / f".partial-{plan.name}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for s, x in stems16.items():
        sf.write(partial / f"{s}.wav", x.T, sr, subtype="PCM_16")
    sf.write(partial / "mixture.wav", mix16.T, sr, subtype="PCM_16")
    # read back: the files on disk, not the arrays, must add up
    back = {s: sf.read(partial / f"{s}.wav", dtype="int16", always_2d=True)[0] for s in sources}
    mix_back = sf.read(partial / "mixture.wav", dtype="int16", always_2d=True)[0]
    if not np.array_equal(sum(v.astype(np.int32) for v in back.values()), mix_back):
        raise RuntimeError(f"{plan.name}: mixture != sum of stems after writing")
    loudness = {s: round(rms_db(x) - 90.309, 2) for s, x in stems16.items()}  # 20log10(32768)
    loudness["mixture"] = round(rms_db(mix16) - 90.309, 2)
    record = {
        "plan": asdict(plan),
        "info": rendered.info,
        "gain": gain,
        "rms_dbfs": loudness,
        "seconds": plan.seconds,
    }
    (partial / "track.json").write_text(json.dumps(record, indent=1))
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)
    return record


def _is_complete(folder: Path, sources: tuple[str, ...]) -> bool:
    names = {"mixture.wav", "track.json", *(f"{s}.wav" for s in sources)}
    return folder.is_dir() and names <= {p.name for p in folder.iterdir()}


# One preset per worker process: it holds loaded SoundFonts and samples between tracks.
_WORKER: dict[str, Any] = {}


def _init_worker(preset_name: str, pool_root: str | None, out: str) -> None:
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning)
    _WORKER["preset"] = make_preset(preset_name)
    _WORKER["pool"] = RealPool.open(pool_root) if pool_root else RealPool.empty()
    _WORKER["out"] = Path(out)


def _render_one(plan: TrackPlan) -> tuple[str, dict[str, Any]]:
    preset, pool = _WORKER["preset"], _WORKER["pool"]
    rendered = preset.render(plan, pool)
    record = write_track(_WORKER["out"], plan, rendered, preset.sources, preset.sample_rate)
    return plan.name, record


def synth_corpus(
    settings: SynthSettings, out: str | Path, workers: int = 1, progress: bool = True
) -> dict[str, Any]:
    """Render (or finish rendering) the corpus ``settings`` describes into ``out``; returns the
    ``corpus.json`` summary."""
    out = Path(out)
    preset = make_preset(settings.preset)
    preset.check()
    pool = RealPool.open(settings.real_pool) if settings.real_pool else RealPool.empty()
    settings_file = out / "synth_settings.json"
    if settings_file.is_file():
        old = json.loads(settings_file.read_text())
        if old != asdict(settings):
            raise DeepSamplerError(
                f"{out} holds a corpus made with other settings ({old}); render into a new "
                f"--out folder or repeat the same settings to resume"
            )
    elif out.exists() and any(out.iterdir()):
        raise DeepSamplerError(f"{out} is not empty and holds no corpus: choose a new --out")
    out.mkdir(parents=True, exist_ok=True)
    settings_file.write_text(json.dumps(asdict(settings), indent=1))
    for split in SPLITS:  # half-written tracks of an interrupted run are redone
        for partial in (out / split).glob(".partial-*") if (out / split).is_dir() else []:
            shutil.rmtree(partial, ignore_errors=True)

    plans = plan_corpus(settings, preset, pool)
    records: dict[str, dict[str, Any]] = {}
    todo = []
    for p in plans:
        folder = out / p.split / p.name
        if _is_complete(folder, preset.sources):
            rec = json.loads((folder / "track.json").read_text())
            if rec["plan"] == asdict(p):
                records[p.name] = rec
                continue
        todo.append(p)

    from tqdm import tqdm

    start = time.perf_counter()
    bar = tqdm(
        total=len(plans),
        initial=len(plans) - len(todo),
        desc=f"synth {settings.preset}",
        unit="track",
        disable=not progress,
    )
    args = (settings.preset, settings.real_pool, str(out))
    try:
        if workers <= 1:
            _init_worker(*args)
            results = map(_render_one, todo)
            _consume(results, records, bar, todo, start)
        else:
            ctx = mp.get_context("spawn")  # no inherited torch/OpenMP state in the workers
            # one thread per worker: the workers already fill the cores, and math-library
            # thread pools (OpenBLAS, OpenMP) would only compete with them
            saved = {k: os.environ.get(k) for k in _THREAD_VARS}
            os.environ.update({k: "1" for k in _THREAD_VARS})
            try:
                with ctx.Pool(workers, initializer=_init_worker, initargs=args) as workers_pool:
                    results = workers_pool.imap_unordered(_render_one, todo)
                    _consume(results, records, bar, todo, start)
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
    finally:
        bar.close()
        _WORKER.clear()
    wall = time.perf_counter() - start
    rendered_seconds = sum(p.seconds for p in todo)
    summary = summarise(settings, preset, plans, records)
    summary["last_run"] = {
        "tracks_rendered": len(todo),
        "audio_seconds": rendered_seconds,
        "wall_seconds": round(wall, 2),
        "x_realtime": round(rendered_seconds / wall, 1) if todo and wall > 0 else None,
        "workers": workers,
    }
    (out / "corpus.json").write_text(json.dumps(summary, indent=1))
    return summary


def _consume(results, records, bar, todo, start) -> None:
    done_seconds = 0.0
    seconds = {p.name: p.seconds for p in todo}
    for name, record in results:
        records[name] = record
        done_seconds += seconds[name]
        elapsed = time.perf_counter() - start
        bar.set_postfix_str(f"{done_seconds / max(elapsed, 1e-9):.0f}x real time")
        bar.update(1)


def summarise(
    settings: SynthSettings, preset, plans: list[TrackPlan], records: dict[str, dict]
) -> dict[str, Any]:
    """The ``corpus.json`` content: settings, per-split hours, histograms, loudness."""
    hours = Counter()
    instruments: dict[str, Counter] = {}
    styles = Counter()
    loud: dict[str, list[float]] = {s: [] for s in (*preset.sources, "mixture")}
    tracks = []
    for p in plans:
        rec = records[p.name]
        hours[p.split] += p.seconds / 3600
        info = rec["info"]
        for part in info.get("parts", []):
            instruments.setdefault(part["role"], Counter())[part["instrument"]] += 1
        for key, kinds in info.items():  # speech/siren: noise_kinds, siren_kinds, ...
            if key.endswith("_kinds") and isinstance(kinds, list):
                instruments.setdefault(key[: -len("_kinds")], Counter()).update(map(str, kinds))
        if "style" in info:
            styles[info["style"]] += 1
        for s, v in rec["rms_dbfs"].items():
            loud.setdefault(s, []).append(v)
        tracks.append({"split": p.split, "name": p.name, "piece": p.piece, "seed": p.seed})

    def describe(values: list[float]) -> dict[str, float]:
        a = np.array(values)
        active = a[a > -100]
        return {
            "mean": round(float(active.mean()), 2) if active.size else None,
            "p10": round(float(np.percentile(active, 10)), 2) if active.size else None,
            "p90": round(float(np.percentile(active, 90)), 2) if active.size else None,
            "silent_tracks": int((a <= -100).sum()),
        }

    return {
        "format_version": FORMAT_VERSION,
        "settings": asdict(settings),
        "sources": list(preset.sources),
        "sample_rate": preset.sample_rate,
        "channels": preset.channels,
        "tracks_per_split": dict(Counter(p.split for p in plans)),
        "hours_per_split": {s: round(hours[s], 4) for s in SPLITS},
        "pieces_per_split": {s: len({p.piece for p in plans if p.split == s}) for s in SPLITS},
        "instruments": {r: dict(c.most_common()) for r, c in instruments.items()},
        "styles": dict(styles.most_common()),
        "rms_dbfs": {s: describe(v) for s, v in loud.items() if v},
        "tracks": tracks,
    }
