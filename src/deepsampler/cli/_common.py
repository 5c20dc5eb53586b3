"""What the command modules share: error and progress lines, threads, inputs and outputs, stem
lists and the offline post-processing options.

Imports no command module (each of them imports this one), so the package has no cycle.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from deepsampler.errors import DeepSamplerError
from deepsampler.threads import offline_threads, set_threads

Say = Callable[..., None]


def error(message: str) -> None:
    """One ``deepsampler: error: ...`` line on stderr."""
    print(f"deepsampler: error: {message}", file=sys.stderr)


def sayer(quiet: bool, file: TextIO | None = None) -> Say:
    """``print`` (flushed, to ``file`` or stdout), or nothing with ``--quiet``."""
    if quiet:
        return lambda *a: None
    if file is None:
        return lambda *a: print(*a, flush=True)
    return lambda *a: print(*a, file=file, flush=True)


def use_offline_threads(threads: int | None) -> tuple[int, str]:
    """Apply ``--threads`` of an offline command (default: chosen by the load): the count and
    why, for the summary line."""
    count, why = offline_threads(threads)
    set_threads(count)
    return count, why


def track_name(path: Path) -> str:
    """A track is named by its file, or by its folder for MUSDB18-style `<track>/mixture.wav`."""
    return path.parent.name if path.stem == "mixture" and path.parent.name else path.stem


def collect_inputs(inputs: Sequence[str], output: Path) -> list[tuple[Path, str]]:
    """Files to separate with their track names. Folders are searched recursively; in a folder
    holding a ``mixture.*`` (MUSDB18-HQ layout) only the mixture is taken, not the stems beside
    it; files under the output folder (earlier results) are skipped."""
    from deepsampler.batch.plan import find_audio

    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if not path.is_dir():
            files.append(path)  # missing or unreadable files are reported per file later
            continue
        files.extend(find_audio(path, output))
    seen: dict[str, Path] = {}
    for f in files:
        name = track_name(f)
        if name in seen and seen[name] != f:
            raise DeepSamplerError(
                f"{seen[name]} and {f} would both write to the track folder {name!r}; "
                f"rename one or separate them into different -o folders"
            )
        seen[name] = f
    return [(f, track_name(f)) for f in files]


def refuse_overwriting_inputs(
    inputs: Sequence[Path], output: Path, stems: Sequence[str], fmt: str
) -> None:
    """Refuse a run whose output would replace one of its inputs (the same file by inode, so
    links and other spellings of the path count), before any work."""
    existing = {}
    for path in inputs:
        try:
            st = path.stat()
        except OSError:
            continue  # a missing input is reported when it is read
        existing[(st.st_dev, st.st_ino)] = path
    for track in {track_name(p) for p in inputs}:
        for stem in stems:
            out = output / track / f"{stem}.{fmt}"
            try:
                st = out.stat()
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in existing:
                raise DeepSamplerError(
                    f"{out}: this output would replace the input "
                    f"{existing[(st.st_dev, st.st_ino)]}; choose another -o folder"
                )


def other_format_stems(folder: Path, stems: Sequence[str], fmt: str) -> list[Path]:
    """Stem files of another output format beside the ones just written (an earlier run)."""
    from deepsampler.audio import OUTPUT_FORMATS

    return [
        folder / f"{name}.{other}"
        for name in stems
        for other in OUTPUT_FORMATS
        if other != fmt and (folder / f"{name}.{other}").exists()
    ]


def check_stems(
    value: str | None, sources: Sequence[str], model: str, option: str = "--stems"
) -> list[str] | None:
    """A comma-separated stem list: None when not given (all stems), else known names only;
    an empty list (``--stems ""``) is refused rather than read as 'all'."""
    if value is None:
        return None
    stems = [s.strip() for s in value.split(",") if s.strip()]
    if not stems:
        raise DeepSamplerError(
            f"{option} {value!r} names no stem; give some of {', '.join(sources)} "
            f"(or leave {option} out for all)"
        )
    unknown = [s for s in stems if s not in sources]
    if unknown:
        raise DeepSamplerError(
            f"{option}: unknown stem(s) {unknown}; model {model} gives {list(sources)}"
        )
    return stems


def add_offline_options(parser: argparse.ArgumentParser) -> None:
    """``--wiener``, ``--shifts`` and ``--flip``: how an offline separation is post-processed
    and averaged (``separate`` and ``evaluate`` share them)."""
    parser.add_argument(
        "--wiener",
        type=wiener_arg,
        default=-1,
        help="multichannel Wiener post-filter of each chunk: EM iterations (0 = soft mask), "
        "or off (default: off; see benchmarks/offline_options.py)",
    )
    parser.add_argument(
        "--shifts",
        type=int,
        default=None,
        help="average N offline passes whose STFT frames start k*hop/N samples later "
        "(N times the compute; default: the model's own: 2 for music4-hq, whose validation "
        "gained from it, 1 = one pass for the others; see benchmarks/offline_options.py)",
    )
    parser.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also average the pass with left and right swapped (twice the compute; default: "
        "the model's own: on for music4-hq, off for the others); --no-flip turns it off",
    )


def wiener_arg(value: str) -> int:
    """``--wiener``: ``off`` (-1) or EM iterations (0 = soft mask)."""
    if value == "off":
        return -1
    if value.isdigit():
        return int(value)
    raise argparse.ArgumentTypeError(f"{value!r}: use off or a number of EM iterations")
