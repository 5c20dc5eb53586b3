#!/usr/bin/env python
"""A held-out real speech-in-noise set from the real-recordings pool, for reporting only.

Speech and noise come from the pool's *test* split (``data.real_pool.RealPool``: by speaker for
read speech, by recording for noise), which no corpus ever trains or validates on, so the set
shares no speaker and no noise recording with training. Noise is restricted to non-stationary
classes (animals, tools, household and impact sounds, street background); steady ones (rain,
wind, sea, insects, appliances) are left out, because a model that only learnt steady noise passes
them (issue 26). Each item is one real utterance (at most ``--max-seconds``) over one real noise
clip, looped to length, at an SNR drawn uniformly from ``--snr`` dB; ``mixture = speech + noise``
exactly. Written in the MUSDB18-HQ layout that ``deepsampler evaluate`` and
``benchmarks/speech_peers.py`` read (``OUT/<item>/{mixture,speech,noise}.wav``, 16 kHz mono,
32-bit float) with ``OUT/heldout.json`` (every item's files, SNR, classes and licences).

Use it to report, never to choose a checkpoint, a size or a loss.

    .venv/bin/python scripts/make_heldout_speech.py --out experiments/heldout-speech
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from deepsampler.audio import write_audio
from deepsampler.data.levels import rms_db
from deepsampler.data.real_pool import AUTO, RealFile, RealPool, describe_auto, load_real
from deepsampler.data.splits import stable_hash
from deepsampler.errors import DeepSamplerError

SAMPLE_RATE = 16000
# ESC-50 / MUSAN classes whose sound is steady over seconds: left out of the held-out set
STEADY_CLASSES = frozenset(
    {
        "rain",
        "wind",
        "sea_waves",
        "thunderstorm",
        "crickets",
        "insects",
        "vacuum_cleaner",
        "washing_machine",
        "crackling_fire",
        "pouring_water",
        "noise",
    }
)


def manifest_notes(pool: RealPool) -> dict[str, dict[str, str]]:
    """``{local_file: row}`` of the pool's MANIFEST.tsv (class in the note, licence)."""
    with (pool.root / "MANIFEST.tsv").open(newline="") as fh:
        return {row["local_file"]: row for row in csv.DictReader(fh, delimiter="\t")}


def sound_class(row: dict[str, str]) -> str:
    """The recording's class: the note's first field (``dog; orig 44100 Hz ...`` -> ``dog``),
    with MUSAN's ``noise (MUSAN free-sound)`` read as ``noise``."""
    return (row.get("note") or "").split(";")[0].split("(")[0].strip() or "unknown"


def rel(pool: RealPool, f: RealFile) -> str:
    return str(f.path.relative_to(pool.root))


def loop_to(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` repeated (whole) until ``n`` samples, then cut."""
    return np.tile(x, -(-n // len(x)))[:n]


def make_items(
    pool: RealPool, count: int, snr_db: tuple[float, float], max_seconds: float, seed: int
) -> list[dict]:
    """Plan and render ``count`` items: ``[{"name", "speech", "noise", "mixture", ...}]``."""
    rows = manifest_notes(pool)
    speech = sorted(pool.select("speech", "test"), key=lambda f: str(f.path))
    noise = sorted(
        (
            f
            for f in pool.select("noise", "test") + pool.select("background", "test")
            if sound_class(rows[rel(pool, f)]) not in STEADY_CLASSES
        ),
        key=lambda f: str(f.path),
    )
    if not speech or not noise:
        raise DeepSamplerError(
            f"{pool.root}: its test split holds {len(speech)} speech and {len(noise)} "
            "non-stationary noise recordings; both are needed"
        )
    rng = np.random.default_rng(seed)
    speech_order = rng.permutation(len(speech))
    noise_order = rng.permutation(len(noise))
    items = []
    for i in range(count):
        s_file = speech[speech_order[i % len(speech)]]
        n_file = noise[noise_order[i % len(noise)]]
        clean = load_real(s_file, SAMPLE_RATE)[: round(max_seconds * SAMPLE_RATE)]
        raw = load_real(n_file, SAMPLE_RATE)
        if rms_db(raw) <= -119 or rms_db(clean) <= -119:
            continue  # a silent recording cannot set an SNR
        snr = float(rng.uniform(*snr_db))
        start = int(rng.integers(0, max(1, len(raw) - len(clean))))
        bed = loop_to(np.roll(raw, -start), len(clean))
        gain = 10 ** ((rms_db(clean) - rms_db(bed) - snr) / 20)
        bed = (bed * gain).astype(np.float32)
        mixture = clean + bed
        peak = float(np.abs(mixture).max())
        scale = 0.9 / peak if peak > 0.9 else 1.0  # no clipping, same scale for all three
        s_row, n_row = rows[rel(pool, s_file)], rows[rel(pool, n_file)]
        speaker = s_file.path.stem.partition("__")[2].split("-")[0] or s_file.path.stem
        name = f"h{i:02d}_{speaker}_{sound_class(n_row).replace(' ', '-')}"
        items.append(
            {
                "name": name,
                "audio": {
                    "mixture": mixture * scale,
                    "speech": clean * scale,
                    "noise": bed * scale,
                },
                "speech_file": rel(pool, s_file),
                "noise_file": rel(pool, n_file),
                "noise_class": sound_class(n_row),
                "snr_db": round(snr, 2),
                "seconds": round(len(clean) / SAMPLE_RATE, 2),
                "licences": sorted({s_row.get("licence", ""), n_row.get("licence", "")}),
            }
        )
    return items


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--pool", default=AUTO, help=f"real-recordings pool folder (default: {describe_auto()})"
    )
    ap.add_argument("--out", required=True, help="folder to write (refused if it holds items)")
    ap.add_argument("--items", type=int, default=32)
    ap.add_argument("--snr", type=float, nargs=2, default=(-5.0, 10.0), metavar=("LO", "HI"))
    ap.add_argument("--max-seconds", type=float, default=8.0)
    ap.add_argument("--seed", type=int, default=26)
    args = ap.parse_args(argv)
    try:
        pool = RealPool.from_setting(args.pool)
        if pool.root is None:
            raise DeepSamplerError("no real-recordings pool found; pass --pool DIR")
        if args.items < 1 or args.snr[0] > args.snr[1] or args.max_seconds <= 0:
            raise DeepSamplerError("need --items >= 1, --snr LO <= HI and --max-seconds > 0")
        out = Path(args.out)
        if out.exists() and any(out.iterdir()):
            raise DeepSamplerError(f"{out}: exists and is not empty; choose a new folder")
        items = make_items(pool, args.items, tuple(args.snr), args.max_seconds, args.seed)
    except DeepSamplerError as exc:
        print(f"make_heldout_speech: error: {exc}", file=sys.stderr)
        return 1
    for item in items:
        for stem, audio in item.pop("audio").items():
            (out / item["name"]).mkdir(parents=True, exist_ok=True)
            write_audio(out / item["name"] / f"{stem}.wav", audio[None], SAMPLE_RATE)
    record = {
        "purpose": "held-out real speech in non-stationary real noise: report only, never choose",
        "pool": str(pool.root),
        "pool_split": "test (by speaker for speech, by recording for noise)",
        "seed": args.seed,
        "snr_db": list(args.snr),
        "sample_rate": SAMPLE_RATE,
        "speakers": len({i["name"].split("_")[1] for i in items}),
        "noise_classes": sorted({i["noise_class"] for i in items}),
        "items": items,
        "digest": f"{stable_hash(json.dumps(items, sort_keys=True)):016x}",
    }
    (out / "heldout.json").write_text(json.dumps(record, indent=2))
    print(
        f"wrote {len(items)} items ({sum(i['seconds'] for i in items) / 60:.1f} min, "
        f"{record['speakers']} speakers, {len(record['noise_classes'])} noise classes) to {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
