"""The ``speech`` preset: speech over noise, 16 kHz mono, sources ``speech`` and ``noise``.

Speech is either synthesised by espeak-ng (many languages and voice variants, rates 120-220 wpm,
pitch 20-80, generated sentences) or real read speech from the pool's ``speech/`` files of the
track's split, laid on a timeline with natural pauses. Noise mixes 1-3 kinds with slow level
changes: coloured noise, mains hum, machinery, a music bed, traffic (:mod:`noise`), babble
(espeak-ng talkers or real speech of the same split) and real noise clips from the pool. The SNR
is set on active speech.

This module also holds what the siren preset shares: the espeak-ng wrapper, the sentence
generator, real-file loading, and planning/rendering of mixed noise components.

Audio is float32; stems are ``[1, samples]`` at 16 kHz; levels in dBFS, times in seconds.
"""

from __future__ import annotations

import functools
import re
import subprocess
from typing import Any

import numpy as np

from deepsampler.data.synth import noise as N
from deepsampler.data.synth.common import (
    RealFile,
    RealPool,
    RenderedTrack,
    TrackPlan,
    add_reverb,
    db_to_gain,
    fit_length,
    load_real,
    require_program,
    rms_db,
    stable_hash,
)

SR = 16000
ESPEAK_SR = 22050
#: Pause espeak-ng inserts between the utterances of one call; we cut at runs of silence longer
#: than BREAK_MIN_S (sentence pauses at 120 wpm stay well below it) and re-time utterances.
BREAK_S = 1.5
BREAK_MIN_S = 1.0
#: Largest absolute sample any stem may reach; a render above it scales all its stems down.
PEAK_MAX = 0.95

# --------------------------------------------------------------------------------------------
# text generation: templates over small word lists, deterministic given the rng

_EN = {
    "noun": """time year people way day man woman child world school state family student group
    country problem hand part place case week company system program question work government
    number night point home water room mother area money story fact month lot right study book
    eye job word business issue side kind head house service friend father power hour game line
    end member law car city community name president team minute idea kid body information back
    parent face others level office door health person art war history party result change
    morning reason research girl guy moment air teacher force education garden river window
    kitchen train station bridge market letter picture coffee bottle table chair street village
    mountain island forest letter music dog cat horse bird apple bread cheese doctor engine
    signal radio phone camera ticket weather summer winter evening answer plan garden""".split(),
    "adj": """good new first last long great little own other old right big high different small
    large next early young important few public bad same able red blue green yellow bright dark
    quiet loud warm cold heavy light quick slow strange simple happy tired busy empty full clean
    broken careful gentle famous narrow wide deep soft sharp sweet bitter local final open
    hidden""".split(),
    "verb": """take make find give tell ask call keep bring begin show hear play move hold write
    build carry open close follow watch learn change read spend grow remember visit paint send
    fix cook clean sell buy answer explain finish start help wash check count""".split(),
    "past": """took made found gave told asked called kept brought began showed heard played
    moved held wrote built carried opened closed followed watched learned changed read spent
    grew remembered visited painted sent fixed cooked cleaned sold bought answered explained
    finished started helped washed checked counted""".split(),
    "adv": """quickly slowly quietly carefully suddenly finally really almost always never often
    sometimes today tomorrow yesterday together again already soon later outside upstairs
    early""".split(),
    "name": """Anna Peter Maria John Sarah David Laura Michael Emma James Lucy Thomas Olivia
    Daniel Sophie Henry Grace Oliver Alice Samuel Clara Victor Nina Oscar Ruth Felix Helen
    Martin Julia Robert""".split(),
    "place": """London Paris Berlin Madrid Boston Chicago Dublin Sydney Toronto Vienna Oslo
    Lisbon Denver Glasgow Prague Seattle Bristol Geneva Naples Austin""".split(),
    "prep": "near behind under above beside inside outside across through around".split(),
    "pron": "I you we they he she".split(),
}
_EN_TEMPLATES = [
    "the {adj} {noun} {past} the {noun} {adv}.",
    "{name} said that the {noun} was {adj}.",
    "{pron} {past} the {adj} {noun} {prep} the {noun}.",
    "did you {verb} the {noun} {prep} the {noun}?",
    "please {verb} the {noun} before {num} o'clock.",
    "we will {verb} the {adj} {noun} in {place} {adv}.",
    "there are {num} {adj} {noun}s {prep} the {noun}.",
    "{name} and {name} {past} a {adj} {noun} {adv}.",
    "why did the {noun} {verb} the {noun}?",
    "I think the {noun} is {adv} {adj}, but the {noun} is not.",
    "{pron} never {past} the {noun} again.",
    "after the {noun}, {name} {past} the {adj} {noun} to {place}.",
    "can you {verb} {num} {noun}s for the {noun}?",
    "it was {adj} and {adj} in {place} {adv}.",
    "my {noun} {past} {prep} the {adj} {noun}!",
    "the {noun} in {place} costs {num} pounds.",
]

#: Small word lists so that other languages' voices read their own words (espeak-ng applies
#: the language's letter-to-sound rules, so the phonetics are right even without grammar).
_WORDS = {
    "de": """der die das und ist nicht ein eine ich du wir sie haben sein werden heute morgen
    Haus Stadt Wasser Zeit Mann Frau Kind Arbeit Schule Auto Zug Bahnhof Wetter Sommer Winter
    schnell langsam gut schlecht groß klein neu alt gehen kommen sehen sagen machen wissen
    immer wieder vielleicht zusammen Fenster Garten Brot""".split(),
    "fr": """le la les et est pas un une je tu nous vous ils avoir être faire aller venir voir
    dire maison ville eau temps homme femme enfant travail école voiture train gare temps été
    hiver vite lentement bon mauvais grand petit nouveau vieux toujours encore peut-être
    ensemble fenêtre jardin pain aujourd'hui demain""".split(),
    "es": """el la los las y es no un una yo tú nosotros ellos tener ser hacer ir venir ver
    decir casa ciudad agua tiempo hombre mujer niño trabajo escuela coche tren estación verano
    invierno rápido despacio bueno malo grande pequeño nuevo viejo siempre otra vez quizás
    juntos ventana jardín pan hoy mañana""".split(),
    "it": """il la gli e è non un una io tu noi loro avere essere fare andare venire vedere dire
    casa città acqua tempo uomo donna bambino lavoro scuola macchina treno stazione estate
    inverno veloce piano buono cattivo grande piccolo nuovo vecchio sempre ancora forse insieme
    finestra giardino pane oggi domani""".split(),
    "pt": """o a os as e é não um uma eu tu nós eles ter ser fazer ir vir ver dizer casa cidade
    água tempo homem mulher criança trabalho escola carro comboio estação verão inverno rápido
    devagar bom mau grande pequeno novo velho sempre ainda talvez juntos janela jardim pão hoje
    amanhã""".split(),
    "nl": """de het een en is niet ik jij wij zij hebben zijn worden gaan komen zien zeggen
    maken huis stad water tijd man vrouw kind werk school auto trein station zomer winter snel
    langzaam goed slecht groot klein nieuw oud altijd weer misschien samen raam tuin brood
    vandaag morgen""".split(),
    "pl": """i nie jest to ja ty my oni mieć być robić iść przyjść widzieć mówić dom miasto woda
    czas mężczyzna kobieta dziecko praca szkoła samochód pociąg dworzec lato zima szybko powoli
    dobry zły duży mały nowy stary zawsze znowu może razem okno ogród chleb dzisiaj
jutro""".split(),
}
#: Latin-script languages without a word list read pseudo-words built from syllables.
_SYLLABLE_LANGS = ["sv", "da", "nb", "fi", "cs", "sk", "hu", "tr", "ro", "hr", "id", "sw", "eo"]
_ONSETS = "b c d f g h j k l m n p r s t v z br tr st kl pr sk gr".split()
_VOWELS = "a e i o u a e i o ai au ei".split()
_CODAS = ["", "", "", "n", "r", "s", "t", "l", "k", "m"]
_VOWEL_GROUP = re.compile(r"[aeiouyäöüéèàáíóúâêîôûąęåæø]+")

ENGLISH_VOICES = ["en-gb", "en-us", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-us-nyc",
                  "en-gb-x-gbclan", "en-gb-x-gbcwmd"]  # fmt: skip
OTHER_VOICES = {
    "de": "de", "fr": "fr-fr", "es": "es", "it": "it", "pt": "pt", "nl": "nl", "pl": "pl",
    "sv": "sv", "da": "da", "nb": "nb", "fi": "fi", "cs": "cs", "sk": "sk", "hu": "hu",
    "tr": "tr", "ro": "ro", "hr": "hr", "id": "id", "sw": "sw", "eo": "eo",
}  # fmt: skip
EXTRA_DIALECTS = {"fr": ["fr-be", "fr-ch"], "es": ["es-419"], "pt": ["pt-br"]}
#: espeak-ng ``+variant`` voices (formant sets); whispering ones rarer.
VARIANTS = ["", "f1", "f2", "f3", "f4", "f5", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "croak",
            "klatt", "klatt2", "klatt3", "Andy", "Annie", "Alicia", "david", "max", "steph",
            "linda", "paul", "quincy", "robert", "shelby", "grandma", "grandpa", "whisper",
            "whisperf"]  # fmt: skip
VARIANT_WEIGHTS = np.array([3.0 if v == "" else 0.4 if "whisper" in v else 1.0 for v in VARIANTS])


def english_sentence(rng: np.random.Generator) -> str:
    """One generated English sentence (templates over a few hundred words)."""
    template = _EN_TEMPLATES[int(rng.integers(len(_EN_TEMPLATES)))]
    out = []
    for chunk in template.split("{"):
        if "}" in chunk:
            slot, rest = chunk.split("}", 1)
            if slot == "num":
                lo, hi = ((2, 13), (13, 100), (100, 2000))[int(rng.integers(3))]
                word = str(int(rng.integers(lo, hi)))
            else:
                words = _EN[slot]
                word = words[int(rng.integers(len(words)))]
            out.append(word + rest)
        else:
            out.append(chunk)
    text = "".join(out)
    return text[0].upper() + text[1:]


def foreign_sentence(rng: np.random.Generator, lang: str) -> str:
    """A pseudo-sentence of 4-12 words in ``lang`` (its word list, else made-up syllables)."""
    count = int(rng.integers(4, 13))
    if lang in _WORDS:
        words = [str(w) for w in rng.choice(_WORDS[lang], count)]
    else:
        words = []
        for _ in range(count):
            syl = int(rng.integers(1, 4))
            words.append(
                "".join(
                    str(rng.choice(_ONSETS)) + str(rng.choice(_VOWELS)) + str(rng.choice(_CODAS))
                    for _ in range(syl)
                )
            )
    if count > 6 and rng.random() < 0.5:
        words[int(rng.integers(2, count - 2))] += ","
    text = " ".join(words)
    return text[0].upper() + text[1:] + str(rng.choice([".", ".", ".", "?", "!"]))


def draw_voice(rng: np.random.Generator, english: float = 0.6) -> dict[str, Any]:
    """A talker: espeak-ng voice name (language[+variant]), rate (wpm), pitch (0-99), the
    language of its texts."""
    if rng.random() < english:
        lang, base = "en", ENGLISH_VOICES[int(rng.integers(len(ENGLISH_VOICES)))]
    else:
        lang = list(OTHER_VOICES)[int(rng.integers(len(OTHER_VOICES)))]
        bases = [OTHER_VOICES[lang]] + EXTRA_DIALECTS.get(lang, [])
        base = bases[int(rng.integers(len(bases)))]
    variant = VARIANTS[int(rng.choice(len(VARIANTS), p=VARIANT_WEIGHTS / VARIANT_WEIGHTS.sum()))]
    return {
        "voice": base + ("+" + variant if variant else ""),
        "lang": lang,
        "rate": int(rng.integers(120, 221)),
        "pitch": int(rng.integers(20, 81)),
    }


def draw_utterance(rng: np.random.Generator, lang: str) -> str:
    """One utterance: 1-2 sentences in ``lang``."""
    make = english_sentence if lang == "en" else lambda r: foreign_sentence(r, lang)
    return " ".join(make(rng) for _ in range(1 if rng.random() < 0.7 else 2))


def estimate_seconds(text: str, rate: int) -> float:
    """Rough duration (s) espeak-ng takes to say ``text`` at ``rate`` wpm (planning only):
    fitted on espeak-ng output over our languages as 0.64 s per vowel group per 60/rate s,
    within -35 %/+30 % for 90 % of utterances (word counts miss long pseudo-words)."""
    syllables = len(_VOWEL_GROUP.findall(text.lower())) + 2 * sum(c.isdigit() for c in text)
    return 0.64 * syllables * 60.0 / rate + 0.1


# --------------------------------------------------------------------------------------------
# espeak-ng


def _parse_wav(data: bytes) -> tuple[np.ndarray, int]:
    """espeak-ng's ``--stdout`` WAV (16-bit mono; its size fields are bogus when streaming, so
    the data chunk runs to the end): float32 ``[n]`` and the rate in Hz."""
    if len(data) < 44 or data[:4] != b"RIFF":
        return np.zeros(0, np.float32), ESPEAK_SR
    sr = int.from_bytes(data[24:28], "little")
    pos = data.find(b"data", 12)
    start = pos + 8 if pos >= 0 else 44
    body = data[start : start + (len(data) - start) // 2 * 2]
    return np.frombuffer(body, "<i2").astype(np.float32) / 32768.0, sr


def _espeak_raw(texts: list[str], voice: str, rate: int, pitch: int) -> tuple[np.ndarray, int]:
    exe = require_program("espeak-ng", "espeak-ng")
    # one process per talker: utterances joined by SSML breaks, cut apart afterwards (a process
    # start costs more than synthesising a sentence)
    brk = f' <break time="{int(BREAK_S * 1000)}ms"/> '
    ssml = (
        "<speak>" + brk.join(t.replace("<", " ").replace("&", " and ") for t in texts) + "</speak>"
    )
    cmd = [exe, "-m", "-v", voice, "-s", str(rate), "-p", str(pitch), "--stdout", ssml]
    proc = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    return _parse_wav(proc.stdout)


def split_utterances(x: np.ndarray, sr: int, min_gap_s: float = BREAK_MIN_S) -> list[np.ndarray]:
    """Cut ``x [n]`` at runs of near-digital silence longer than ``min_gap_s`` seconds; each
    piece is trimmed of its silent edges (10 ms kept). Returns the non-empty pieces."""
    loud = np.abs(x) > 3e-4
    if not loud.any():
        return []
    idx = np.flatnonzero(loud)
    gaps = np.flatnonzero(np.diff(idx) > min_gap_s * sr)
    starts = np.concatenate([[idx[0]], idx[gaps + 1]])
    ends = np.concatenate([idx[gaps], [idx[-1]]]) + 1
    margin = int(0.01 * sr)
    return [x[max(0, s - margin) : e + margin] for s, e in zip(starts, ends, strict=True)]


def espeak(texts: list[str], voice: str, rate: int, pitch: int, sr: int = SR) -> dict[str, Any]:
    """Say ``texts`` with espeak-ng in one process. Returns ``{"utterances": [float32 [m]...] at
    sr Hz, "voice": the voice used}``. A voice this espeak-ng lacks falls back to its language,
    then to "en" (so older espeak-ng versions still render)."""
    from deepsampler.audio import resample
    from deepsampler.errors import DeepSamplerError

    tried = []
    for v in dict.fromkeys([voice, voice.split("+")[0], "en"]):
        tried.append(v)
        raw, raw_sr = _espeak_raw(texts, v, rate, pitch)
        if raw.size and np.abs(raw).max() > 1e-3:
            break
    else:
        raise DeepSamplerError(f"espeak-ng produced no audio for voices {tried}")
    audio = resample(raw[None], raw_sr, sr)[0] if raw_sr != sr else raw
    return {"utterances": split_utterances(audio, sr), "voice": v}


# --------------------------------------------------------------------------------------------
# real recordings


@functools.lru_cache(maxsize=256)
def _load_cached(path: str, category: str, sr: int) -> np.ndarray:
    from pathlib import Path

    x = load_real(RealFile(Path(path), category, 0.0, ""), sr)
    x.setflags(write=False)
    return x


def load_pool_file(pool: RealPool, rel: str, sr: int = SR) -> np.ndarray:
    """The pool file ``rel`` (path relative to the pool root) as mono float32 ``[n]`` at ``sr``
    Hz, cached (read-only) because a corpus reuses the same clips many times."""
    from deepsampler.errors import DeepSamplerError

    if pool.root is None:
        raise DeepSamplerError(f"the plan uses the real recording {rel} but no pool was given")
    return _load_cached(str(pool.root / rel), str(rel).rsplit("/", 1)[0], sr)


def rel_path(pool: RealPool, f: RealFile) -> str:
    """``f``'s path relative to the pool root, as a string with forward slashes."""
    assert pool.root is not None
    return f.path.relative_to(pool.root).as_posix()


def trim_silence(x: np.ndarray, sr: int, range_db: float = 45.0) -> np.ndarray:
    """``x [n]`` without leading/trailing stretches quieter than ``range_db`` below its loudest
    10 ms frame (recordings start and end with room tone), keeping 50 ms of margin."""
    mask = N.active_mask(x, sr, 0.01, range_db)
    if not mask.any():
        return x
    idx = np.flatnonzero(mask)
    margin = int(0.05 * sr)
    return x[max(0, idx[0] - margin) : idx[-1] + margin]


def pick_files(
    rng: np.random.Generator, files: list[RealFile], seconds: float, max_files: int = 12
) -> list[RealFile]:
    """Random files (without repeats while possible) whose durations add up to ``seconds``."""
    out: list[RealFile] = []
    total = 0.0
    order = list(rng.permutation(len(files)))
    while total < seconds and len(out) < max_files and files:
        if not order:
            order = list(rng.permutation(len(files)))
        f = files[int(order.pop())]
        out.append(f)
        total += max(f.seconds, 0.5)
    return out


def loop_clips(
    rng: np.random.Generator, clips: list[np.ndarray], n: int, sr: int, fade_s: float = 0.05
) -> np.ndarray:
    """Clips laid end to end with ``fade_s`` crossfades, cycled until ``n`` samples are filled,
    starting at a random point of the first clip. float32 ``[n]``."""
    clips = [c for c in clips if c.size > 4 * int(fade_s * sr)] or [np.zeros(n, np.float32)]
    fade = int(fade_s * sr)
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    out = np.zeros(n + fade, np.float32)
    pos = -int(rng.integers(0, max(1, clips[0].size - fade)))
    i = 0
    while pos < n:
        c = clips[i % len(clips)].astype(np.float32).copy()
        c[:fade] *= ramp
        c[-fade:] *= ramp[::-1]
        lo, hi = max(0, pos), min(n + fade, pos + c.size)
        out[lo:hi] += c[lo - pos : hi - pos]
        pos += c.size - fade
        i += 1
    return out[:n]


# --------------------------------------------------------------------------------------------
# babble


def draw_babble(
    rng: np.random.Generator, split: str, seconds: float, pool: RealPool
) -> dict[str, Any]:
    """Babble of 3-8 talkers: real read speech of ``split`` (when the pool has some, half the
    time) or 2 espeak-ng voices whose speech is re-pitched into the talkers."""
    talkers = int(rng.integers(3, 9))
    files = pool.select("speech", split)
    if files and rng.random() < 0.5:
        chosen = [files[int(i)] for i in rng.choice(len(files), min(talkers, len(files)), False)]
        return {"source": "real", "files": [rel_path(pool, f) for f in chosen]}
    voices = [draw_voice(rng, 0.5) for _ in range(2)]
    # each voice says about min(seconds, 6) s; longer tracks cycle it (babble is unintelligible)
    texts = []
    for v in voices:
        said, t = [], 0.0
        while t < min(seconds, 6.0) + 1:
            said.append(draw_utterance(rng, v["lang"]))
            t += estimate_seconds(said[-1], v["rate"]) + 0.2
        texts.append(said)
    factors = [round(float(f), 4) for f in rng.uniform(0.82, 1.22, talkers)]
    return {"source": "espeak", "voices": voices, "texts": texts, "factors": factors}


def render_babble(
    rng: np.random.Generator, n: int, sr: int, pool: RealPool, **p: Any
) -> tuple[np.ndarray, dict[str, Any]]:
    """Babble ``[n]`` (RMS 1) and facts about it. Each talker is a loop of speech with its own
    start point, level and (for espeak) resampling factor, which shifts pitch and formants so
    that two voices become several distinct talkers."""
    from deepsampler.audio import resample

    streams: list[np.ndarray] = []
    if p["source"] == "real":
        for rel in p["files"]:
            streams.append(N.normalise_rms(trim_silence(load_pool_file(pool, rel, sr), sr)))
        used = {"files": p["files"]}
    else:
        bases, used_voices = [], []
        for v, texts in zip(p["voices"], p["texts"], strict=True):
            said = espeak(texts, v["voice"], v["rate"], v["pitch"], sr)
            used_voices.append(said["voice"])
            gap = np.zeros(int(0.15 * sr), np.float32)
            parts = [a for u in said["utterances"] for a in (u, gap)]
            bases.append(np.concatenate(parts) if parts else np.zeros(sr, np.float32))
        for i, f in enumerate(p["factors"]):
            base = bases[i % len(bases)]
            streams.append(N.normalise_rms(resample(base[None], int(round(sr * f)), sr)[0]))
        used = {"voices": used_voices, "factors": p["factors"]}
    out = np.zeros(n, np.float32)
    for s in streams:
        out += loop_clips(rng, [s], n, sr) * db_to_gain(float(rng.uniform(-6, 0)))
    return N.normalise_rms(out), {"talkers": len(streams), **used}


# --------------------------------------------------------------------------------------------
# noise components: what both presets mix under their target


def draw_component(
    kind: str, rng: np.random.Generator, split: str, seconds: float, pool: RealPool
) -> dict[str, Any]:
    """One noise component ``{"kind", "params", "gain_db", "swell_db", "swell_s"}``. Kinds:
    those of :data:`noise.KINDS`, "babble", and "real:<category>" (pool clips of ``split``)."""
    if kind == "babble":
        params = draw_babble(rng, split, seconds, pool)
    elif kind.startswith("real:"):
        files = pool.select(kind[5:], split)
        params = {"files": [rel_path(pool, f) for f in pick_files(rng, files, seconds + 1)]}
    else:
        params = N.draw(kind, rng)
    return {
        "kind": kind,
        "params": params,
        "gain_db": 0.0,
        "swell_db": round(float(rng.uniform(0, 6)), 2),
        "swell_s": round(float(rng.uniform(1, 5)), 2),
    }


def draw_components(
    rng: np.random.Generator,
    split: str,
    seconds: float,
    pool: RealPool,
    weights: dict[str, float],
    real: dict[str, float],
    most: int = 3,
) -> list[dict[str, Any]]:
    """1-``most`` distinct noise components drawn with ``weights`` over synthetic kinds and
    ``real`` weights over pool categories (used only when the split has files there), each
    component but the first at -10..0 dB relative to the first."""
    table = dict(weights)
    for cat, w in real.items():
        if pool.select(cat, split):
            table[f"real:{cat}"] = w
    kinds = list(table)
    probs = np.array([table[k] for k in kinds], np.float64)
    count = min(len(kinds), int(rng.integers(1, most + 1)))
    chosen = [kinds[int(i)] for i in rng.choice(len(kinds), count, False, probs / probs.sum())]
    comps = [draw_component(k, rng, split, seconds, pool) for k in chosen]
    for c in comps[1:]:
        c["gain_db"] = round(float(rng.uniform(-10, 0)), 2)
    return comps


def render_components(
    comps: list[dict[str, Any]], rng: np.random.Generator, n: int, sr: int, pool: RealPool
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """The sum ``[n]`` of the components (each RMS 1 times its gain and slow swell) and a JSON
    list describing each (kind, files/voices, level in dBFS before the final scaling)."""
    out = np.zeros(n, np.float32)
    facts = []
    for c in comps:
        kind, p = c["kind"], c["params"]
        fact: dict[str, Any] = {"kind": kind}
        if kind == "babble":
            x, more = render_babble(rng, n, sr, pool, **p)
            fact.update(more)
        elif kind.startswith("real:"):
            clips = [trim_silence(load_pool_file(pool, rel, sr), sr) for rel in p["files"]]
            x = N.normalise_rms(loop_clips(rng, [N.normalise_rms(c) for c in clips], n, sr))
            fact["files"] = p["files"]
        else:
            x = N.render(kind, p, rng, n, sr)
        x = x * db_to_gain(c["gain_db"]) * N.slow_gain(rng, n, sr, c["swell_db"], c["swell_s"])
        fact["rms_db"] = round(rms_db(x), 2)
        facts.append(fact)
        out += x
    return out, facts


def real_files_of(params: Any) -> list[str]:
    """Every pool path (string under a "files" key) referenced anywhere in ``params``."""
    found: list[str] = []
    if isinstance(params, dict):
        for k, v in params.items():
            if k in ("files", "file"):
                found += [v] if isinstance(v, str) else list(v)
            else:
                found += real_files_of(v)
    elif isinstance(params, list):
        for v in params:
            found += real_files_of(v)
    return found


def limit_peaks(stems: dict[str, np.ndarray], peak: float = PEAK_MAX) -> float:
    """Scale all ``stems`` (in place) by one gain so no stem exceeds ``peak``: ratios between
    stems (the SNR) stay as planned. Returns the gain in dB (0 when nothing was done)."""
    top = max(float(np.abs(s).max()) for s in stems.values())
    if top <= peak:
        return 0.0
    g = peak / top
    for k in stems:
        stems[k] *= np.float32(g)
    return round(20 * np.log10(g), 2)


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
