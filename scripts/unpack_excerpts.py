"""Unpack an excerpt corpus of ``scripts/pack_excerpts.py`` into 16-bit WAV, with a mixture.

On the machine that trains (a lent GPU): decoding Ogg Vorbis once is cheaper than in every pair
draw, and the separator cache (``deepsampler stemprover cache``) needs ``mixture.*`` files that a
``--no-mixture`` pack left out: the mixture is written as the sum of the stems (clipped to
[-1, 1]), which is what a synthetic corpus's mixture is.

    python scripts/unpack_excerpts.py .devdata/music /tmp/music
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf

# the sibling script that wrote the corpus (scripts/ is on sys.path when this one runs)
from pack_excerpts import SOURCES


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path, help="packed corpus: SRC/<split>/<track>/<source>.{flac,ogg}")
    ap.add_argument("out", type=Path, help="WAV corpus to write: OUT/<split>/<track>/*.wav")
    args = ap.parse_args()
    tracks = sorted(p.parent for p in args.src.glob("*/*/vocals.*"))
    if not tracks:
        raise SystemExit(f"{args.src}: no <split>/<track>/vocals.* files")
    for track in tracks:
        out = args.out / track.relative_to(args.src)
        out.mkdir(parents=True, exist_ok=True)
        stems = {}
        for s in SOURCES:
            (path,) = track.glob(f"{s}.*")
            stems[s], rate = sf.read(path, dtype="float32", always_2d=True)
        n = min(x.shape[0] for x in stems.values())  # a lossy codec may pad the last frame
        for s, x in stems.items():
            sf.write(out / f"{s}.wav", x[:n], rate, subtype="PCM_16")
        mixture = np.clip(sum(x[:n] for x in stems.values()), -1.0, 1.0)
        sf.write(out / "mixture.wav", mixture, rate, subtype="PCM_16")
    print(f"{len(tracks)} tracks -> {args.out}")


if __name__ == "__main__":
    main()
