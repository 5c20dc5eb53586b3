"""Unpack an excerpt corpus of ``scripts/pack_excerpts.py`` into 16-bit WAV, with a mixture.

On the machine that trains (a lent GPU): decoding Ogg Vorbis once is cheaper than in every pair
draw, and the separator cache (``deepsampler stemprover cache``) needs ``mixture.*`` files that a
``--no-mixture`` pack left out: the mixture is written as the sum of the stems (clipped to
[-1, 1]), which is what a synthetic corpus's mixture is. The sources are the packed files of each
track other than ``mixture`` (any corpus: music4, speech/noise, siren/background); every track
must hold the same ones.

    python scripts/unpack_excerpts.py .devdata/music /tmp/music
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf

PACKED = (".flac", ".ogg")  # what pack_excerpts.py writes


def packed_tracks(src: Path) -> dict[Path, dict[str, Path]]:
    """``{track folder: {source: file}}`` of a packed corpus ``SRC/<split>/<track>/*``."""
    tracks: dict[Path, dict[str, Path]] = {}
    for path in sorted(src.glob("*/*/*")):
        if path.suffix.lower() in PACKED and path.stem != "mixture":
            tracks.setdefault(path.parent, {})[path.stem] = path
    if not tracks:
        raise SystemExit(f"{src}: no <split>/<track>/<source>.{{flac,ogg}} files")
    first, sources = next(iter(tracks.items()))
    for track, files in tracks.items():
        if files.keys() != sources.keys():
            raise SystemExit(
                f"{track}: holds {sorted(files)}, {first} holds {sorted(sources)}; "
                "a corpus's tracks must share their sources (pack it again)"
            )
    return tracks


def unpack(src: Path, out: Path) -> int:
    """Write every packed track of ``src`` to ``out`` (same relative folders) as 16-bit WAV stems
    plus ``mixture.wav``, the clipped sum of the stems; returns the number of tracks."""
    tracks = packed_tracks(src)
    for track, files in tracks.items():
        target = out / track.relative_to(src)
        target.mkdir(parents=True, exist_ok=True)
        stems = {}
        for s, path in files.items():
            stems[s], rate = sf.read(path, dtype="float32", always_2d=True)
        n = min(x.shape[0] for x in stems.values())  # a lossy codec may pad the last frame
        for s, x in stems.items():
            sf.write(target / f"{s}.wav", x[:n], rate, subtype="PCM_16")
        mixture = np.clip(sum(x[:n] for x in stems.values()), -1.0, 1.0)
        sf.write(target / "mixture.wav", mixture, rate, subtype="PCM_16")
    return len(tracks)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path, help="packed corpus: SRC/<split>/<track>/<source>.{flac,ogg}")
    ap.add_argument("out", type=Path, help="WAV corpus to write: OUT/<split>/<track>/*.wav")
    args = ap.parse_args(argv)
    print(f"{unpack(args.src, args.out)} tracks -> {args.out}")


if __name__ == "__main__":
    main()
