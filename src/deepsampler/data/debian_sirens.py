"""Real siren recordings (and a few street confusers) shipped inside Debian game data packages.

The real-recordings pool holds only four siren clips (ESC-50), and none of them falls in its test
split, so no real siren is held out from training. A search of Debian bookworm's sound-bearing
packages (issue 27: games, desktop sound themes, children's software; by file name and by a
spectral check for a strong tone in 500-2000 Hz) found the recordings listed in
:data:`DEBIAN_SIRENS`. Each is assigned to a split **by package**, so that one sound designer's
material never sits on both sides:

- ``test`` (held out; ``scripts/make_siren_streams.py`` builds its report-only streams from
  them): ``tuxpaint-stamps-default`` (a fire engine's mechanical wail and horn driving past,
  recorded) and ``micropolis-data`` (a low-fidelity siren recording, 8 kHz bandwidth);
- ``train``: ``lincity-ng-data`` (a mechanical fire-station siren spinning up, an electronic yelp
  and a very clean two-tone that may be synthesised);
- ``valid`` (event rules and checkpoints are chosen on streams of it): ``scorched3d-data``'s
  Apocalypse mod (a fire engine's wail and a police car's two-tone yelp), found by a second
  search of bookworm's file lists (``apt-file search`` for siren, police, fire engine and
  ambulance sound files) on 2026-12-07.

:data:`DEBIAN_CONFUSERS` holds siren-free street sounds (car horns, heavy traffic) of the held-out
package, for false-alarm streams.

None of these packages is needed: :func:`find_debian_sirens` returns the files that are installed
(under ``root``, ``/`` by default, or a folder a package was unpacked into with ``dpkg -x``) and
one line per missing package saying how to install it. Nothing here is redistributed; the
licences below are those of ``/usr/share/doc/<package>/copyright`` and upstream's credits.

Audio from :func:`load_debian_sound` is mono float32 ``[n]`` at the requested rate (Hz).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Environment variable naming a folder to look under instead of ``/`` (a ``dpkg -x`` target).
ROOT_ENV = "DEEPSAMPLER_DEBIAN_ROOT"


@dataclass(frozen=True)
class DebianSound:
    """One recording inside a Debian package.

    ``path`` is absolute as installed (``/usr/share/...``); ``seconds`` and ``sample_rate`` (Hz)
    are those of bookworm's package; ``kind`` is the siren pattern (``wail``, ``yelp``, ``hilo``,
    ``steady``) or the confuser's class; ``recording`` is ``"real"`` where the spectrum shows a
    recording (a noise floor 25-40 dB under the tone, irregular harmonics) and ``"uncertain"``
    where it is too clean to tell from a synthesised one; ``split`` is ``train``, ``valid`` or
    ``test``.
    """

    package: str
    path: str
    licence: str
    seconds: float
    sample_rate: int
    kind: str
    recording: str
    split: str
    note: str = ""

    def located(self, root: str | Path = "/") -> Path:
        """Where the file is under ``root`` (``/`` for an installed package)."""
        return Path(root) / self.path.lstrip("/")


_LINCITY = "GPL-2+ (sound effects dual-licensed GPL / CC BY-SA 2.0; lincity-ng-data copyright)"
_MICROPOLIS = "GPL-3+ with Electronic Arts' additional terms (micropolis-data copyright)"
_SCORCHED = (
    "CC BY-SA 3.0, Apocalypse mod team (scorched3d-data copyright, Files: data/globalmods/apoc/*)"
)
_SCORCHED_DIR = "/usr/share/games/scorched3d/data/globalmods/apoc/data/wav/misc"
_TUXPAINT = (
    "package: GPL-2; upstream credits: 'doppler_honk' by Giuseppe Mangione (Fonogeno, 2006, "
    "freesound 24348), CC Sampling Plus 1.0, marked 'non-free - needs replacing' upstream"
)

#: Every real siren recording found in bookworm (see the module docstring for the search).
DEBIAN_SIRENS: tuple[DebianSound, ...] = (
    DebianSound(
        "tuxpaint-stamps-default",
        "/usr/share/tuxpaint/stamps/vehicles/emergency/firetruck.ogg",
        _TUXPAINT,
        10.32,
        44100,
        "wail",
        "real",
        "test",
        "fire engine driving past: mechanical wail winding down, then horn and yelp; stereo",
    ),
    DebianSound(
        "micropolis-data",
        "/usr/share/games/micropolis/res/sounds/siren.wav",
        _MICROPOLIS,
        2.34,
        22050,
        "steady",
        "real",
        "test",
        "siren tone falling 670 -> 570 Hz with its octave; 8 kHz bandwidth, noisy floor",
    ),
    DebianSound(
        "lincity-ng-data",
        "/usr/share/games/lincity-ng/sounds/FireStation3.wav",
        _LINCITY,
        4.0,
        11025,
        "wail",
        "real",
        "train",
        "mechanical siren spinning up to about 1.1 kHz, a bell/horn burst at 1.4-2.2 s",
    ),
    DebianSound(
        "lincity-ng-data",
        "/usr/share/games/lincity-ng/sounds/Health4.wav",
        _LINCITY,
        3.98,
        11025,
        "yelp",
        "real",
        "train",
        "electronic siren: 0.7 s steady tone, then a 0.43 s yelp between 450 and 1100 Hz",
    ),
    DebianSound(
        "lincity-ng-data",
        "/usr/share/games/lincity-ng/sounds/Health3.wav",
        _LINCITY,
        4.01,
        11025,
        "hilo",
        "uncertain",
        "train",
        "two-tone (about 450/600 Hz, a European 'nee-naw'); floor 56 dB down: maybe synthesised",
    ),
    DebianSound(
        "scorched3d-data",
        f"{_SCORCHED_DIR}/firetruck.wav",
        _SCORCHED,
        4.48,
        11025,
        "wail",
        "real",
        "valid",
        "one wail cycle, 880 Hz up to 1.6 kHz and down to 900 Hz; floor about 42 dB down",
    ),
    DebianSound(
        "scorched3d-data",
        f"{_SCORCHED_DIR}/policecar.wav",
        _SCORCHED,
        5.53,
        11025,
        "hilo",
        "real",
        "valid",
        "police two-tone yelp, about 700-800 Hz and 1.2-1.4 kHz, 1.25 s cycle; floor 30 dB down",
    ),
)

#: Siren-free street sounds of the held-out package (confusers for false-alarm streams).
DEBIAN_CONFUSERS: tuple[DebianSound, ...] = tuple(
    DebianSound(
        "micropolis-data",
        f"/usr/share/games/micropolis/res/sounds/{name}.wav",
        _MICROPOLIS,
        seconds,
        22050,
        kind,
        "real",
        "test",
    )
    for name, seconds, kind in (
        ("honkhonk-low", 0.95, "car_horn"),
        ("honkhonk-med", 0.8, "car_horn"),
        ("honkhonk-high", 0.66, "car_horn"),
        ("heavytraffic", 2.08, "traffic"),
    )
)


def default_root() -> Path:
    """``$DEEPSAMPLER_DEBIAN_ROOT`` if set, else ``/``."""
    return Path(os.environ.get(ROOT_ENV) or "/")


def find_debian_sounds(
    catalogue: tuple[DebianSound, ...],
    split: str | None = None,
    root: str | Path | None = None,
) -> tuple[list[DebianSound], list[str]]:
    """The entries of ``catalogue`` (of ``split``, all if None) whose file exists under ``root``
    (default :func:`default_root`), and one reason per package with missing files, e.g.
    ``"micropolis-data: not installed (1 file missing under /); sudo apt-get install
    micropolis-data"``. An empty list always comes with at least one reason."""
    base = Path(root) if root is not None else default_root()
    wanted = [s for s in catalogue if split is None or s.split == split]
    found = [s for s in wanted if s.located(base).is_file()]
    missing: dict[str, int] = {}
    for s in wanted:
        if s not in found:
            missing[s.package] = missing.get(s.package, 0) + 1
    reasons = [
        f"{pkg}: not installed ({k} file{'s' if k > 1 else ''} missing under {base}); "
        f"sudo apt-get install {pkg}"
        for pkg, k in missing.items()
    ]
    if not wanted:
        reasons.append(f"no Debian recording is assigned to split {split!r}")
    return found, reasons


def find_debian_sirens(
    split: str | None = None, root: str | Path | None = None
) -> tuple[list[DebianSound], list[str]]:
    """Installed :data:`DEBIAN_SIRENS` of ``split`` and reasons for the missing ones (see
    :func:`find_debian_sounds`)."""
    return find_debian_sounds(DEBIAN_SIRENS, split, root)


def load_debian_sound(
    sound: DebianSound, sample_rate: int, root: str | Path | None = None
) -> np.ndarray:
    """``sound`` as mono float32 ``[n]`` at ``sample_rate`` Hz (channels averaged, soxr)."""
    from deepsampler.audio import read_audio, resample

    base = Path(root) if root is not None else default_root()
    audio, sr = read_audio(sound.located(base))
    mono = audio.mean(axis=0, keepdims=True)
    return resample(mono, sr, sample_rate)[0].astype(np.float32)
