"""Arrangements: what each part plays, in beats, before instruments and rendering are chosen.

Two sources: procedurally generated pop/rock/funk/... songs (chord progressions, a sung melody
in phrases, style-specific bass lines, comping, pads and arpeggios, a drum groove), and scores
from music21's bundled corpus (chorales, Palestrina, madrigals, folk tunes), whose voices are
mapped onto the four roles and completed with a bass, chords and drums where they lack them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deepsampler.data.synth.drums import STYLES, DrumHit, drum_pattern
from deepsampler.data.synth.fluid import Note

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
DORIAN = (0, 2, 3, 5, 7, 9, 10)
MIXOLYDIAN = (0, 2, 4, 5, 7, 9, 10)
MODES = {"major": MAJOR, "minor": MINOR, "dorian": DORIAN, "mixolydian": MIXOLYDIAN}
NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

# Progressions as scale degrees (0-based), one chord per bar.
PROGRESSIONS = {
    "major": [
        (0, 4, 5, 3),
        (5, 3, 0, 4),
        (0, 3, 4, 3),
        (1, 4, 0, 5),
        (0, 5, 3, 4),
        (0, 3, 0, 4),
        (3, 0, 4, 5),
        (0, 0, 3, 4),
        (0, 0, 0, 0, 3, 3, 0, 0, 4, 3, 0, 4),
    ],
    "minor": [(0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 4), (0, 3, 6, 2), (0, 5, 3, 4)],
    "dorian": [(0, 3), (0, 0, 3, 3), (0, 6, 3, 0)],
    "mixolydian": [(0, 6, 3, 0), (0, 3, 6, 0), (0, 0, 6, 3)],
}


@dataclass
class BeatNote:
    """A note in beats (quarter notes) from the excerpt start."""

    start: float
    duration: float
    pitch: int
    velocity: int


@dataclass
class PartPlan:
    """One part: its role (a stem), its kind (what it plays: melody, bass, comp, pad, arp,
    counter, drums) and its notes in beats (or drum hits in seconds)."""

    role: str
    kind: str
    notes: list[BeatNote] = field(default_factory=list)
    hits: list[DrumHit] = field(default_factory=list)


@dataclass
class Arrangement:
    parts: list[PartPlan]
    tempo: float  # quarter notes per minute
    beats_per_bar: int
    key: str
    style: str
    source: str
    swing: float = 0.0


def chord_tones(tonic: int, scale: tuple[int, ...], degree: int, seventh: bool) -> list[int]:
    """Pitch classes of the diatonic chord on ``degree``: root, third, fifth (and seventh)."""
    steps = (0, 2, 4, 6) if seventh else (0, 2, 4)
    return [(tonic + scale[(degree + s) % 7]) % 12 for s in steps]


def _nearest(pitch_classes: list[int], around: float, lo: int, hi: int) -> int:
    cands = [p for p in range(lo, hi + 1) if p % 12 in pitch_classes]
    return min(cands, key=lambda p: abs(p - around)) if cands else int(around)


def _melody(
    rng: np.random.Generator,
    chords: list[list[int]],
    scale_pcs: list[int],
    bpb: int,
    lo: int,
    hi: int,
) -> list[BeatNote]:
    """A sung line over ``chords`` (one per bar) in 2-bar phrases with a repeated motif: chord
    tones on strong beats, scale steps between, breaths at phrase ends."""
    rhythms = [  # in eighths, per bar of 4 beats; negative = rest
        [2, 2, 2, 2],
        [1, 1, 2, 2, 2],
        [3, 1, 2, 2],
        [2, 1, 1, 2, 2],
        [1, 1, 1, 1, 2, 2],
        [4, 2, 2],
        [2, 2, 4],
        [1, 2, 1, 2, 2],
        [-2, 2, 2, 2],
        [-1, 1, 2, 1, 1, 2],
    ]
    notes: list[BeatNote] = []
    motif = [rhythms[int(rng.integers(0, len(rhythms)))] for _ in range(2)]
    pos = (lo + hi) / 2
    vel = int(rng.integers(70, 105))
    for bar, chord in enumerate(chords):
        if bar % 2 == 0 and rng.random() < 0.35:  # new phrase rhythm now and then
            motif = [rhythms[int(rng.integers(0, len(rhythms)))] for _ in range(2)]
        pattern = list(motif[bar % 2])
        scale8 = bpb * 2 / 8
        if bar % 2 == 1 and rng.random() < 0.7:  # breathe at the end of the phrase
            pattern[-1] = -abs(pattern[-1])
        t = bar * bpb
        for k, length in enumerate(pattern):
            dur = abs(length) * 0.5 * scale8
            if length > 0:
                strong = k == 0 or (t % 2 == 0)
                if strong:
                    p = _nearest(chord, pos + rng.normal(0, 2.5), lo, hi)
                else:
                    p = _nearest(scale_pcs, pos + rng.choice([-2, -1, 1, 2]), lo, hi)
                pos = 0.7 * p + 0.3 * (lo + hi) / 2
                notes.append(
                    BeatNote(t, dur * rng.uniform(0.8, 0.98), p, vel + int(rng.integers(-8, 9)))
                )
            t += dur
    return notes


def _bass(rng, chords, bpb, style, lo=28, hi=52) -> list[BeatNote]:
    notes = []
    kind = {
        "funk": "funk",
        "disco": "octave",
        "jazz": "walk",
        "reggae": "reggae",
        "shuffle": "shuffle",
        "ballad": "whole",
    }.get(style, rng.choice(["root8", "root4", "rootfifth"]))
    vel = int(rng.integers(80, 112))
    for bar, chord in enumerate(chords):
        t0 = bar * bpb
        root = _nearest([chord[0]], 40, lo, hi)
        fifth = _nearest([chord[2]], root + 7, lo, hi)
        nxt = chords[(bar + 1) % len(chords)][0]
        if kind == "whole":
            seq = [(0, bpb, root)]
        elif kind == "root4":
            seq = [(b, 0.9, root) for b in range(bpb)]
        elif kind == "root8":
            seq = [(b / 2, 0.45, root) for b in range(bpb * 2)]
        elif kind == "rootfifth":
            seq = [(b, 0.9, root if b % 2 == 0 else fifth) for b in range(bpb)]
        elif kind == "octave":
            seq = [(b / 2, 0.4, root + (12 if b % 2 else 0)) for b in range(bpb * 2)]
        elif kind == "funk":
            seq = [
                (s / 4, 0.2, root + int(rng.choice([0, 0, 12, 7, 10])))
                for s in range(bpb * 4)
                if s == 0 or rng.random() < 0.4
            ]
        elif kind == "reggae":
            seq = [(0.5, 0.4, root), (1.0, 0.9, fifth), (2.5, 0.4, root), (3.0, 0.5, root + 12)]
        elif kind == "shuffle":
            seq = [
                (b + o, 0.3, root + iv)
                for b, iv in zip(range(bpb), (0, 4, 7, 9), strict=False)
                for o in (0, 2 / 3)
            ]
        else:  # walking: chord tones then a chromatic approach to the next root
            target = _nearest([nxt], root, lo, hi)
            third = _nearest([chord[1]], root + 4, lo, hi)
            seq = [
                (0, 0.9, root),
                (1, 0.9, third),
                (2, 0.9, fifth),
                (3, 0.9, target + rng.choice([-1, 1])),
            ]
        for off, dur, p in seq:
            if off < bpb:
                notes.append(
                    BeatNote(
                        t0 + off,
                        dur,
                        int(np.clip(p, lo - 4, hi + 7)),
                        vel + int(rng.integers(-10, 8)),
                    )
                )
    return notes


def _comp(rng, chords, bpb, kind, lo=48, hi=76) -> list[BeatNote]:
    """Chord parts: ``comp`` (rhythmic block chords), ``pad`` (held), ``arp`` (broken chords)."""
    notes = []
    vel = int(rng.integers(55, 95))
    rhythm = (
        [(0, 1.5), (1.5, 1.0), (2.5, 1.5)] if rng.random() < 0.5 else [(b, 0.8) for b in range(bpb)]
    )
    center = rng.uniform(lo + 6, hi - 8)
    arp_step = 0.5 if rng.random() < 0.6 else 0.25
    for bar, chord in enumerate(chords):
        t0 = bar * bpb
        voicing = sorted({_nearest([pc], center + i * 3, lo, hi) for i, pc in enumerate(chord)})
        if kind == "pad":
            notes += [BeatNote(t0, bpb * 0.98, p, vel) for p in voicing]
        elif kind == "comp":
            for off, dur in rhythm:
                if off < bpb:
                    v = vel + int(rng.integers(-10, 10))
                    notes += [
                        BeatNote(t0 + off + 0.01 * i, dur * 0.9, p, v)
                        for i, p in enumerate(voicing)
                    ]
        else:  # arp
            seq = voicing + voicing[-2:0:-1] if len(voicing) > 2 else voicing
            for i, t in enumerate(np.arange(0, bpb, arp_step)):
                notes.append(
                    BeatNote(
                        t0 + t, arp_step * 0.95, seq[i % len(seq)], vel + int(rng.integers(-8, 8))
                    )
                )
    return notes


def _counter(rng, chords, scale_pcs, bpb) -> list[BeatNote]:
    """A sparse instrumental line (riffs, fills) in a register below the voice."""
    line = _melody(rng, chords, scale_pcs, bpb, 52, 72)
    keep = rng.uniform(0.3, 0.7)
    return [n for n in line if rng.random() < keep]


def generated_song(rng: np.random.Generator, seconds: float) -> Arrangement:
    """A procedurally generated song of a random style filling ``seconds``."""
    style = str(rng.choice(list(STYLES)))
    spec = STYLES[style]
    tempo = float(rng.uniform(*spec["tempo"]))
    bpb = 3 if style == "waltz" else 4
    mode = str(rng.choice(["major", "minor", "dorian", "mixolydian"], p=[0.45, 0.3, 0.12, 0.13]))
    tonic = int(rng.integers(0, 12))
    scale = MODES[mode]
    scale_pcs = [(tonic + s) % 12 for s in scale]
    bars = int(np.ceil(seconds / (bpb * 60 / tempo))) + 1
    sections = [PROGRESSIONS[mode][int(rng.integers(0, len(PROGRESSIONS[mode])))] for _ in range(2)]
    seventh = style in ("funk", "jazz") or rng.random() < 0.2
    degrees: list[int] = []
    while len(degrees) < bars:
        sec = sections[(len(degrees) // 8) % 2]
        degrees += list(sec) * max(1, 8 // len(sec))
    chords = [chord_tones(tonic, scale, d, seventh) for d in degrees[:bars]]
    low_voice = rng.random() < 0.5
    lo, hi = (45, 67) if low_voice else (55, 79)
    parts = [PartPlan("vocals", "melody", _melody(rng, chords, scale_pcs, bpb, lo, hi))]
    parts.append(PartPlan("bass", "bass", _bass(rng, chords, bpb, style)))
    kinds = list(
        rng.choice(["comp", "pad", "arp", "counter"], size=int(rng.integers(1, 4)), replace=False)
    )
    for kind in kinds:
        notes = (
            _counter(rng, chords, scale_pcs, bpb)
            if kind == "counter"
            else _comp(rng, chords, bpb, kind)
        )
        parts.append(PartPlan("other", str(kind), notes))
    swing = float(rng.uniform(*spec["swing"]))
    hits = drum_pattern(rng, style, tempo, seconds, bpb, swing=swing)
    parts.append(PartPlan("drums", "kit", hits=hits))
    return Arrangement(parts, tempo, bpb, f"{NOTE_NAMES[tonic]} {mode}", style, "generated", swing)


# --- music21 scores --------------------------------------------------------------------------

#: Corpus folders used: "multi" (several voices) or "tune" (one line). Collections stored as
#: one file of hundreds of tunes (essenFolksong, oneills1850, airdsAirs) are left out: parsing
#: such a file takes seconds per track.
SCORE_COLLECTIONS = {
    "bach": "multi",
    "palestrina": "multi",
    "monteverdi": "multi",
    "trecento": "multi",
    "josquin": "multi",
    "ryansMammoth": "tune",
}
_KRUMHANSL_MAJOR = np.array(
    [6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88]
)
_KRUMHANSL_MINOR = np.array(
    [6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17]
)


def score_pieces() -> list[str]:
    """music21 corpus files usable as pieces (paths relative to the corpus root)."""
    from music21 import corpus

    out = []
    for p in corpus.getPaths():
        rel = str(p).split("/corpus/", 1)[-1]
        if rel.split("/")[0] in SCORE_COLLECTIONS and p.suffix in (".krn", ".mxl", ".xml", ".abc"):
            out.append(rel)
    return sorted(out)


def estimate_key(notes: list[BeatNote]) -> tuple[int, str]:
    """Tonic pitch class and mode by the Krumhansl-Schmuckler profile correlation."""
    hist = np.zeros(12)
    for n in notes:
        hist[n.pitch % 12] += n.duration
    best = (-2.0, 0, "major")
    for tonic in range(12):
        for mode, prof in (("major", _KRUMHANSL_MAJOR), ("minor", _KRUMHANSL_MINOR)):
            r = float(np.corrcoef(hist, np.roll(prof, tonic))[0, 1]) if hist.any() else 0.0
            best = max(best, (r, tonic, mode))
    return best[1], best[2]


def harmonise(notes: list[BeatNote], bars: int, bpb: int, tonic: int, mode: str) -> list[list[int]]:
    """One diatonic triad per bar: the one whose tones cover most of the bar's melody."""
    scale = MODES[mode]
    cands = [chord_tones(tonic, scale, d, False) for d in range(7)]
    prior = np.array([1.0, 0.3, 0.3, 0.8, 0.9, 0.6, 0.1])
    chords = []
    for b in range(bars):
        hist = np.zeros(12)
        for n in notes:
            if b * bpb <= n.start < (b + 1) * bpb:
                hist[n.pitch % 12] += n.duration
        scores = [hist[c].sum() + 0.2 * prior[i] for i, c in enumerate(cands)]
        chords.append(cands[int(np.argmax(scores))])
    return chords


def score_arrangement(rng: np.random.Generator, rel_path: str, seconds: float) -> Arrangement:
    """Map a corpus score onto the roles and complete it: top voice sung, lowest voice bass,
    inner voices other; single tunes get a harmonised bass and chords; drums are added."""
    from music21 import corpus

    score = corpus.parse(rel_path)
    if hasattr(score, "scores") and not hasattr(score, "parts"):  # an Opus: take one tune
        score = score.scores[0]
    if hasattr(score, "scores") and len(getattr(score, "parts", [])) == 0:
        score = score.scores[int(rng.integers(0, len(score.scores)))]
    voices = []
    for part in score.parts:
        notes = []
        for el in part.flatten().notes:
            for p in getattr(el, "pitches", ()):
                d = float(el.quarterLength)
                if d > 0:
                    notes.append(BeatNote(float(el.offset), d, int(p.midi), 90))
        if notes:
            voices.append(notes)
    if not voices:
        raise ValueError(f"{rel_path}: no notes")
    length = max(n.start + n.duration for v in voices for n in v)
    ts = score.flatten().getElementsByClass("TimeSignature")
    bpb = int(round(ts[0].barDuration.quarterLength)) if len(ts) else 4
    bpb = bpb if bpb in (2, 3, 4, 6) else 4
    style = str(
        rng.choice(
            ["waltz", "ballad"]
            if bpb in (3, 6)
            else ["ballad", "pop", "rock", "shuffle", "halftime", "reggae", "funk"]
        )
    )
    tempo = float(rng.uniform(*STYLES[style]["tempo"]))
    need_beats = seconds * tempo / 60 + bpb
    # loop the piece to cover the excerpt, then start at a random bar
    reps = int(np.ceil((need_beats + length) / length))
    looped = [
        [
            BeatNote(n.start + r * length, n.duration, n.pitch, n.velocity)
            for r in range(reps)
            for n in v
        ]
        for v in voices
    ]
    start = float(int(rng.uniform(0, max(1e-9, length)) // bpb * bpb))
    cut = [
        [
            BeatNote(n.start - start, n.duration, n.pitch, n.velocity)
            for n in v
            if start <= n.start < start + need_beats
        ]
        for v in looped
    ]
    voices = [v for v in cut if v]
    transpose = int(rng.integers(-5, 6))
    voices = [
        [BeatNote(n.start, n.duration, n.pitch + transpose, n.velocity) for n in v] for v in voices
    ]
    voices.sort(key=lambda v: -np.mean([n.pitch for n in v]))
    tonic, mode = estimate_key([n for v in voices for n in v])
    bars = int(np.ceil(need_beats / bpb))
    parts = [PartPlan("vocals", "melody", _humanise_vel(rng, voices[0]))]
    if len(voices) >= 3:
        bass = voices[-1]
        shift = -12 if np.mean([n.pitch for n in bass]) > 50 else 0
        parts.append(
            PartPlan(
                "bass",
                "bass",
                [BeatNote(n.start, n.duration, n.pitch + shift, n.velocity) for n in bass],
            )
        )
        for v in voices[1:-1][:3]:
            parts.append(PartPlan("other", "voice", _humanise_vel(rng, v)))
    else:
        chords = harmonise(voices[0], bars, bpb, tonic, mode)
        parts.append(PartPlan("bass", "bass", _bass(rng, chords, bpb, style)))
        for kind in rng.choice(["comp", "pad", "arp"], size=int(rng.integers(1, 3)), replace=False):
            parts.append(PartPlan("other", str(kind), _comp(rng, chords, bpb, kind)))
        if len(voices) == 2:
            parts.append(PartPlan("other", "voice", _humanise_vel(rng, voices[1])))
    swing = float(rng.uniform(*STYLES[style]["swing"]))
    hits = drum_pattern(rng, style, tempo, seconds, 3 if bpb in (3, 6) else 4, swing=swing)
    parts.append(PartPlan("drums", "kit", hits=hits))
    key = f"{NOTE_NAMES[tonic]} {mode}"
    return Arrangement(parts, tempo, bpb, key, style, f"music21:{rel_path}", swing)


def _humanise_vel(rng, notes: list[BeatNote]) -> list[BeatNote]:
    base = int(rng.integers(65, 105))
    return [
        BeatNote(n.start, n.duration, n.pitch, base + int(rng.integers(-10, 10))) for n in notes
    ]


def to_seconds(
    notes: list[BeatNote], tempo: float, swing: float, rng: np.random.Generator, jitter_ms: float
) -> list[Note]:
    """Beats to seconds: off-beat eighths delayed by ``swing`` (fraction of an eighth), timing
    jitter of ``jitter_ms`` standard deviation, durations kept."""
    beat = 60.0 / tempo
    out = []
    for n in notes:
        t = n.start
        if swing and abs((t % 1.0) - 0.5) < 1e-6:
            t += swing * 0.5
        start = t * beat + rng.normal(0, jitter_ms / 1000)
        out.append(
            Note(max(0.0, start), n.duration * beat, n.pitch, int(np.clip(n.velocity, 1, 127)))
        )
    return out
