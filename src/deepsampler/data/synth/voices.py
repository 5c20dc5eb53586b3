"""Talkers for the speech and siren presets: generated sentences and the espeak-ng wrapper.

Sentences come from templates over small word lists (English) or per-language word lists and
made-up syllables (about twenty other languages), drawn from a numpy generator only, so a plan
is reproducible. :func:`espeak` says a talker's utterances in one espeak-ng process and cuts
them apart again.

Audio is float32 ``[samples]`` at ``sr`` Hz (16 kHz by default).
"""

from __future__ import annotations

import re
import subprocess
from typing import Any

import numpy as np

from deepsampler.data.synth.common import require_program

#: Default rate (Hz) of rendered speech: that of the speech and siren presets.
SR = 16000
ESPEAK_SR = 22050
#: Pause espeak-ng inserts between the utterances of one call; we cut at runs of silence longer
#: than BREAK_MIN_S (sentence pauses at 120 wpm stay well below it) and re-time utterances.
BREAK_S = 1.5
BREAK_MIN_S = 1.0

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
