"""The corpus synthesiser (``deepsampler data synth``): tracks rendered with exact stems.

``corpus`` renders a whole corpus in parallel and resumably; ``common`` holds what a track is
and rooms; the presets are ``music`` (with ``arrange``, ``drums``, ``fluid``, ``singer``),
``speech``, ``speech_real`` and ``siren``. The speech and siren presets share their talkers
(``voices``: sentences and espeak-ng) and their noise beds (``mixing``: real clips, babble,
noise components, peak limiting); ``noise`` generates the synthetic noise kinds. ``report``
describes a rendered corpus.
"""
