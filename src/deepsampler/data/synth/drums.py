"""Drum parts: a pattern generator (grooves per style, fills, ghost notes, crashes, swing and
humanised timing) and two ways to play it: the real multi-velocity sampled kits of Debian's
``hydrogen-drumkits``, placed sample by sample, or a SoundFont kit through FluidSynth.

Times are in seconds, velocities 1-127, audio ``[2, samples]`` float32.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepsampler.data.synth.fluid import Note

HYDROGEN_DIR = Path("/usr/share/hydrogen/data/drumkits")

#: General MIDI drum notes per role (channel 10).
GM_NOTES = {
    "kick": 36,
    "rim": 37,
    "snare": 38,
    "clap": 39,
    "tom_floor": 41,
    "hat_closed": 42,
    "tom_low": 45,
    "hat_pedal": 44,
    "hat_open": 46,
    "tom_mid": 47,
    "tom_high": 50,
    "crash": 49,
    "ride": 51,
    "china": 52,
    "ride_bell": 53,
    "tambourine": 54,
    "splash": 55,
    "cowbell": 56,
}
#: Pan position of each kit piece, drummer's perspective spread.
ROLE_PAN = {
    "kick": 0.0, "snare": -0.05, "rim": -0.05, "clap": 0.0, "hat_closed": -0.35,
    "hat_open": -0.35, "hat_pedal": -0.35, "tom_high": -0.2, "tom_mid": 0.1, "tom_low": 0.3,
    "tom_floor": 0.45, "crash": -0.5, "splash": -0.4, "china": 0.6, "ride": 0.5,
    "ride_bell": 0.5, "tambourine": 0.3, "cowbell": 0.2,
}  # fmt: skip


@dataclass(frozen=True)
class DrumHit:
    time: float  # s
    role: str
    velocity: int


# Per style: grid steps per bar, the step of each beat, and per role a probability per step
# that a one-bar groove plays there (sampled once per song, so the groove repeats like a
# drummer's). Velocities come from the step's accent.
STYLES: dict[str, dict] = {
    "rock": {
        "steps": 16,
        "swing": (0.0, 0.05),
        "hat": "8th",
        "kick": {0: 1, 8: 0.9, 10: 0.35, 6: 0.2, 14: 0.15},
        "snare": {4: 1, 12: 1},
        "tempo": (95, 150),
    },
    "pop": {
        "steps": 16,
        "swing": (0.0, 0.08),
        "hat": "16th",
        "kick": {0: 1, 8: 0.8, 6: 0.4, 11: 0.3},
        "snare": {4: 1, 12: 1},
        "tempo": (85, 128),
    },
    "funk": {
        "steps": 16,
        "swing": (0.0, 0.15),
        "hat": "16th",
        "kick": {0: 1, 3: 0.4, 6: 0.5, 10: 0.6, 11: 0.3, 14: 0.3},
        "snare": {4: 1, 12: 1, 7: 0.4, 9: 0.3, 15: 0.3},
        "ghost": 0.35,
        "tempo": (90, 118),
    },
    "disco": {
        "steps": 16,
        "swing": (0.0, 0.03),
        "hat": "offbeat_open",
        "kick": {0: 1, 4: 1, 8: 1, 12: 1},
        "snare": {4: 1, 12: 1},
        "tempo": (110, 128),
    },
    "shuffle": {
        "steps": 12,
        "swing": (0.0, 0.0),
        "hat": "shuffle",
        "kick": {0: 1, 6: 0.8, 5: 0.3},
        "snare": {3: 1, 9: 1},
        "tempo": (80, 130),
    },
    "halftime": {
        "steps": 16,
        "swing": (0.0, 0.1),
        "hat": "8th",
        "kick": {0: 1, 3: 0.3, 10: 0.5, 14: 0.3},
        "snare": {8: 1},
        "ghost": 0.2,
        "tempo": (130, 170),
    },
    "reggae": {
        "steps": 16,
        "swing": (0.05, 0.2),
        "hat": "8th",
        "kick": {8: 1},
        "snare": {8: 0.9},
        "rim": {8: 0.5},
        "tempo": (70, 95),
    },
    "ballad": {
        "steps": 16,
        "swing": (0.0, 0.05),
        "hat": "ride_8th",
        "kick": {0: 1, 10: 0.5, 6: 0.2},
        "snare": {4: 1, 12: 1},
        "rim_for_snare": 0.5,
        "tempo": (60, 84),
    },
    "waltz": {
        "steps": 12,
        "swing": (0.0, 0.05),
        "hat": "8th_3",
        "kick": {0: 1},
        "snare": {4: 0.9, 8: 0.9},
        "tempo": (84, 150),
    },
    "jazz": {
        "steps": 12,
        "swing": (0.0, 0.0),
        "hat": "jazz_ride",
        "kick": {0: 0.3, 8: 0.1},
        "snare": {5: 0.25, 11: 0.3},
        "ghost": 0.2,
        "tempo": (100, 190),
    },
}


def _hat_steps(kind: str, steps: int) -> list[tuple[int, str, float]]:
    """(step, role, accent) of the time-keeping part for a bar."""
    if kind == "8th":
        return [(s, "hat_closed", 1.0 if s % 4 == 0 else 0.75) for s in range(0, steps, 2)]
    if kind == "16th":
        return [(s, "hat_closed", (1.0, 0.55, 0.8, 0.55)[s % 4]) for s in range(steps)]
    if kind == "offbeat_open":
        return [(s, "hat_open" if s % 4 == 2 else "hat_closed", 0.85) for s in range(0, steps, 2)]
    if kind == "shuffle":  # triplet grid: play 1st and 3rd of each triplet
        return [(s, "hat_closed", 1.0 if s % 3 == 0 else 0.6) for s in range(steps) if s % 3 != 1]
    if kind == "ride_8th":
        return [(s, "ride", 0.8) for s in range(0, steps, 2)]
    if kind == "8th_3":
        return [(s, "hat_closed", 1.0 if s % 4 == 0 else 0.7) for s in range(0, steps, 2)]
    if kind == "jazz_ride":  # ding, ding-da ding, ding-da + pedal hat on 2 and 4
        ride = [(s, "ride", 0.9) for s in (0, 3, 5, 6, 9, 11)]
        return ride + [(3, "hat_pedal", 0.7), (9, "hat_pedal", 0.7)]
    raise ValueError(kind)


def drum_pattern(
    rng: np.random.Generator,
    style: str,
    tempo: float,
    seconds: float,
    beats_per_bar: int = 4,
    swing: float | None = None,
    humanise_ms: float = 8.0,
    fill_every: int = 4,
) -> list[DrumHit]:
    """A drum part of ``style`` at ``tempo`` (quarter notes per minute) filling ``seconds``.

    A one-bar groove is drawn from the style's template and repeated with occasional
    variations; the last bar of every ``fill_every`` bars ends in a tom/snare fill, and the bar
    after a fill opens with a crash. ``swing`` (0-0.33) delays off-beat subdivisions.
    """
    spec = STYLES[style]
    steps = spec["steps"]
    beat = 60.0 / tempo
    bar = beat * (3 if steps == 12 and style == "waltz" else beats_per_bar)
    if style in ("shuffle", "jazz"):
        bar = beat * 4
    if style == "waltz":
        bar = beat * 3
    step_dur = bar / steps
    if swing is None:
        swing = float(rng.uniform(*spec["swing"]))
    groove: list[tuple[int, str, float]] = list(_hat_steps(spec["hat"], steps))
    snare_role = "rim" if rng.random() < spec.get("rim_for_snare", 0) else "snare"
    for role in ("kick", "snare", "rim"):
        for step, p in spec.get(role, {}).items():
            if rng.random() < p:
                groove.append((step, snare_role if role == "snare" else role, 1.0))
    ghost = spec.get("ghost", 0.08)
    ghosts = [s for s in range(steps) if s % 2 == 1 and rng.random() < ghost]
    base_vel = int(rng.integers(80, 118))
    hits: list[DrumHit] = []
    n_bars = int(np.ceil(seconds / bar)) + 1
    crash_next = True
    for b in range(n_bars):
        t0 = b * bar
        fill = fill_every > 0 and (b % fill_every == fill_every - 1) and rng.random() < 0.8
        events = list(groove)
        if rng.random() < 0.15:  # a small variation: drop or add a kick
            events.append((int(rng.integers(0, steps)), "kick", 0.8))
        events += [(s, "snare", 0.3) for s in ghosts]
        if crash_next:
            events.append((0, "crash", 1.0))
            crash_next = False
        if fill:
            start = steps // 2 if rng.random() < 0.7 else 0
            events = [e for e in events if e[0] < start or e[1] == "kick"]
            toms = ["tom_high", "tom_mid", "tom_low", "tom_floor"]
            for i, s in enumerate(range(start, steps)):
                if rng.random() < 0.85:
                    pos = (i * len(toms)) // max(1, steps - start)
                    role = toms[pos] if rng.random() < 0.7 else "snare"
                    events.append((s, role, 0.7 + 0.3 * i / max(1, steps - start)))
            crash_next = True
        for step, role, accent in events:
            t = t0 + step * step_dur
            sub = 2 if steps == 16 else 3
            if steps == 16 and step % sub == 1:
                t += swing * step_dur
            t += rng.normal(0, humanise_ms / 1000)
            vel = int(np.clip(base_vel * accent + rng.normal(0, 7), 12, 127))
            if t < seconds:
                hits.append(DrumHit(max(0.0, float(t)), role, vel))
    hits.sort(key=lambda h: h.time)
    return hits


def hits_to_notes(hits: list[DrumHit]) -> list[Note]:
    """The hits as General MIDI drum notes for a SoundFont kit."""
    return [Note(h.time, 0.1, GM_NOTES[h.role], h.velocity) for h in hits if h.role in GM_NOTES]


# --- Hydrogen sampled kits -------------------------------------------------------------------

_ROLE_PATTERNS = [  # first match wins
    ("hat_pedal", r"(hh|hat).*(pedal|pd\b)|pedal hh|hi-hat pedal"),
    ("hat_open", r"(hh|hat).*(open|op\b|opened|semi)|open hh"),
    ("hat_closed", r"(hh|hat)"),
    ("ride_bell", r"ride.*(bell|cup)|bell"),
    ("ride", r"ride"),
    ("crash", r"crash|splash"),
    ("china", r"china"),
    ("kick", r"kick|bass ?drum|\bbd\b"),
    ("rim", r"stick|rim"),
    ("snare", r"snare"),
    ("clap", r"clap"),
    ("tom_floor", r"floor"),
    ("tom_low", r"tom.*(low|lo\b)|low tom"),
    ("tom_mid", r"tom.*(mid|2)|middle tom"),
    ("tom_high", r"tom.*(hi|high|1)|high tom|\btom\b"),
    ("tambourine", r"tambourine"),
    ("cowbell", r"cowbell"),
]


@dataclass
class KitPiece:
    role: str
    layers: list[tuple[float, float, float, Path]]  # (min vel 0-1, max vel 0-1, gain, file)


def _text(el, tag: str, ns: str, default: str = "") -> str:
    found = el.find(ns + tag)
    return found.text.strip() if found is not None and found.text else default


def parse_hydrogen_kit(folder: Path) -> dict[str, list[KitPiece]]:
    """Kit pieces of a Hydrogen drumkit folder by role (a role may have several pieces)."""
    root = ET.parse(folder / "drumkit.xml").getroot()
    m = re.match(r"\{.*\}", root.tag)
    ns = m.group(0) if m else ""
    pieces: dict[str, list[KitPiece]] = {}
    for ins in root.iter(ns + "instrument"):
        name = _text(ins, "name", ns).lower()
        role = next((r for r, pat in _ROLE_PATTERNS if re.search(pat, name)), None)
        if role is None:
            continue
        layers = []
        for layer in ins.iter(ns + "layer"):
            fname = _text(layer, "filename", ns)
            if fname and (folder / fname).is_file():
                layers.append(
                    (
                        float(_text(layer, "min", ns, "0")),
                        float(_text(layer, "max", ns, "1")),
                        float(_text(layer, "gain", ns, "1")),
                        folder / fname,
                    )
                )
        if not layers:  # old format: one <filename> straight under the instrument
            fname = _text(ins, "filename", ns)
            if fname and (folder / fname).is_file():
                layers.append((0.0, 1.0, 1.0, folder / fname))
        if layers:
            pieces.setdefault(role, []).append(KitPiece(role, layers))
    return pieces


def hydrogen_kits() -> dict[str, Path]:
    """Installed Hydrogen kits usable for a drum-kit part (kick, snare and hi-hat present)."""
    kits = {}
    if HYDROGEN_DIR.is_dir():
        for folder in sorted(HYDROGEN_DIR.iterdir()):
            if (folder / "drumkit.xml").is_file():
                try:
                    roles = parse_hydrogen_kit(folder)
                except ET.ParseError:
                    continue
                if {"kick", "snare", "hat_closed"} <= set(roles):
                    kits[folder.name] = folder
    return kits


class SampleCache:
    """Decoded kit samples at one sample rate, loaded on first use (per worker process)."""

    def __init__(self, sample_rate: int):
        self.sample_rate = sample_rate
        self._audio: dict[Path, np.ndarray] = {}
        self._kits: dict[Path, dict[str, list[KitPiece]]] = {}

    def kit(self, folder: Path) -> dict[str, list[KitPiece]]:
        if folder not in self._kits:
            self._kits[folder] = parse_hydrogen_kit(folder)
        return self._kits[folder]

    def sample(self, path: Path) -> np.ndarray:
        if path not in self._audio:
            from deepsampler.audio import read_audio, resample

            audio, sr = read_audio(path)
            if audio.shape[0] == 1:
                audio = np.repeat(audio, 2, axis=0)
            audio = audio[:2]
            if sr != self.sample_rate:
                audio = resample(audio, sr, self.sample_rate)
            self._audio[path] = audio.astype(np.float32)
        return self._audio[path]


_FALLBACK = {"hat_open": "hat_closed", "hat_pedal": "hat_closed", "rim": "snare",
             "ride_bell": "ride", "ride": "hat_closed", "tom_floor": "tom_low",
             "tom_low": "tom_mid", "tom_mid": "tom_high", "tom_high": "snare",
             "china": "crash", "splash": "crash", "crash": "ride", "clap": "snare",
             "tambourine": "hat_closed", "cowbell": "rim"}  # fmt: skip


def render_hydrogen(
    hits: list[DrumHit],
    kit: Path,
    cache: SampleCache,
    seconds: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Play ``hits`` on a Hydrogen kit: per hit the velocity layer, a random piece when a role
    has several, a velocity gain curve and the piece's pan. Returns ``[2, samples]``."""
    sr = cache.sample_rate
    total = int(round(seconds * sr))
    out = np.zeros((2, total), np.float32)
    pieces = cache.kit(kit)
    choice: dict[str, KitPiece] = {}
    for role in sorted({h.role for h in hits}):
        r = role
        for _ in range(6):
            if r in pieces:
                break
            r = _FALLBACK.get(r, "snare")
        if r in pieces:
            choice[role] = pieces[r][int(rng.integers(0, len(pieces[r])))]
    for h in hits:
        piece = choice.get(h.role)
        if piece is None:
            continue
        v = h.velocity / 127
        fits = [layer for layer in piece.layers if layer[0] <= v <= layer[1] + 1e-6]
        lo, hi, gain, path = fits[0] if fits else piece.layers[-1]
        audio = cache.sample(path)
        start = int(round(h.time * sr))
        if start >= total:
            continue
        n = min(audio.shape[1], total - start)
        amp = gain * v**1.6  # perceived loudness grows faster than linear with velocity
        p = (ROLE_PAN.get(h.role, 0.0) + 1) * np.pi / 4
        out[0, start : start + n] += amp * np.cos(p) * np.sqrt(2) * audio[0, :n]
        out[1, start : start + n] += amp * np.sin(p) * np.sqrt(2) * audio[1, :n]
    return out
