"""The pretrained speech peers (``evaluation.peers``), the recogniser's word error rate
(``evaluation.wer``) and ``benchmarks/speech_peers.py`` (``evaluation.speech_bench``) end to end
on a tiny generated folder."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import soundfile as sf

from deepsampler.evaluation.peers import (
    PEERS,
    FramePeer,
    PeerUnavailable,
    estimate_delay,
    make_peer,
)

SR = 16000
# a sentence and a voice PocketSphinx transcribes well when espeak-ng speaks it (most espeak
# voices come out near 100 % WER; this one came out word for word)
SENTENCE = "the stock market rose today after the president said he would cut taxes"
ESPEAK = ["espeak-ng", "-v", "en-us+f2", "-s", "140", "-g", "3"]


def tone_and_noise(seconds: float = 1.0, seed: int = 0, noise: float = 0.02) -> np.ndarray:
    """``[n]`` float32 at 16 kHz: a voiced-like harmonic tone (150 Hz to 1.65 kHz) in white
    noise of standard deviation ``noise``."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SR)) / SR
    voiced = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 12))
    return (0.05 * voiced + noise * rng.standard_normal(t.size)).astype(np.float32)


def peer_or_skip(name: str):
    try:
        return make_peer(name)
    except PeerUnavailable as exc:
        pytest.skip(str(exc))


def espeak(text: str, path: Path) -> np.ndarray:
    """``text`` spoken by espeak-ng, ``[n]`` float at 16 kHz (skips without espeak-ng)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    import soxr

    subprocess.run([*ESPEAK, "-w", str(path), text], check=True, capture_output=True)
    x, sr = sf.read(path, dtype="float64")
    return soxr.resample(x, sr, SR)


@pytest.mark.parametrize("name", PEERS)
def test_peer_keeps_length_and_runs_single_signal(name):
    peer = peer_or_skip(name)
    x = tone_and_noise()
    y = peer.enhance(x, SR)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.isfinite(y).all() and np.abs(y).max() > 0
    if name == "noisereduce":
        assert peer.latency_ms is None  # offline
    else:  # the delays that PEERS.md reports: about 30 ms (DFN3) and 20 ms (RNNoise)
        assert 5 <= peer.latency_ms <= 60
    peer.close()


class DelayPeer(FramePeer):
    """An identity 'enhancer' that delays by ``k`` samples at 16 kHz, frame by frame."""

    name = "delay"
    rate = SR
    frame = 160

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def _open(self) -> dict:
        return {"line": np.zeros(self.k, np.float32)}

    def _process(self, state: dict, frame: np.ndarray) -> np.ndarray:
        both = np.concatenate([state["line"], frame])
        state["line"] = both[len(frame) :]
        return both[: len(frame)]

    def _free(self, state: dict) -> None:
        pass


@pytest.mark.parametrize("k", [0, 37, 480])
def test_delay_is_measured_and_removed(k):
    peer = DelayPeer(k)
    assert peer.delay() == k
    assert peer.latency_ms == pytest.approx(1000 * k / SR)
    x = tone_and_noise(seconds=0.73)  # not a whole number of frames
    np.testing.assert_array_equal(peer.enhance(x, SR), x)  # aligned and whole, tail included
    # at another input rate the signal is resampled to the peer's and back: a band-limited
    # signal (well below soxr's passband edge) comes back as it went in
    x8k = tone_and_noise(seconds=0.73, noise=0.0)[::2]
    y = peer.enhance(x8k, SR // 2)
    assert y.shape == x8k.shape
    np.testing.assert_allclose(y[100:-100], x8k[100:-100], atol=2e-3)


def test_estimate_delay_of_shifted_noise():
    x = np.random.default_rng(1).standard_normal(4000)
    assert estimate_delay(np.concatenate([np.zeros(123), x])[:4000], x, 500) == 123
    assert estimate_delay(x, x, 500) == 0


def test_word_errors_equal_jiwer():
    jiwer = pytest.importorskip("jiwer")
    from deepsampler.evaluation.wer import wer, word_errors

    assert word_errors("a b c", "a x c d") == (2, 3)  # one substitution, one insertion
    assert word_errors("a b", "") == (2, 2)
    pairs = [
        ("the cat sat on the mat", "the cat sat on mat"),
        ("hello world", "hello there world"),
        ("one two three four", "one too three for"),
    ]
    for ref, hyp in pairs:
        assert wer(ref, hyp) == pytest.approx(jiwer.wer(ref, hyp))
    refs, hyps = zip(*pairs, strict=True)
    errors, words = map(sum, zip(*(word_errors(r, h) for r, h in pairs), strict=True))
    assert errors / words == pytest.approx(jiwer.wer(list(refs), list(hyps)))  # corpus WER


def test_recogniser_transcribes_clean_synthetic_speech(tmp_path):
    pytest.importorskip("pocketsphinx")
    from deepsampler.evaluation.wer import recognise, wer

    x = espeak(SENTENCE, tmp_path / "s.wav")
    text = recognise(x, SR)
    assert wer(SENTENCE, text) <= 0.3, text


def test_a_transcript_does_not_depend_on_what_was_decoded_before(tmp_path, monkeypatch):
    """The benchmark's decoder is shared; without a feature reset per utterance its running
    cepstral mean carried over (on real mixtures, 14 of 17 transcripts changed with the decoding
    order). Every utterance must start from a fresh decoder's mean."""
    pytest.importorskip("pocketsphinx")
    from pocketsphinx import Decoder

    from deepsampler.evaluation import wer

    decoder = wer._decoder()  # shared: other tests may have decoded with it already
    initial = Decoder(loglevel="FATAL").get_cmn()  # a fresh decoder's mean
    seen = []

    class Watch:  # the shared decoder, noting its mean whenever an utterance starts
        def __getattr__(self, name):
            return getattr(decoder, name)

        def start_utt(self):
            seen.append(decoder.get_cmn())
            decoder.start_utt()

    monkeypatch.setattr(wer, "_decoder", Watch)
    x = espeak(SENTENCE, tmp_path / "s.wav")
    texts = [wer.recognise(a, SR) for a in (x, 0.2 * x[::-1].copy(), x)]
    assert texts[0] == texts[2]
    assert decoder.get_cmn() != initial  # decoding moved the mean...
    assert seen == [initial] * 3  # ...and every utterance started from the initial one


def load_benchmark() -> ModuleType:
    from deepsampler.evaluation import speech_bench

    return speech_bench


@pytest.fixture(scope="module")
def speech_folder(tmp_path_factory) -> Path:
    """Two items ``<item>/{mixture,speech,noise}.wav`` of about 1 s: espeak-ng speech (its
    silences trimmed, the recogniser is the slow part) in white noise at +10 dB SNR, 16 kHz."""
    root = tmp_path_factory.mktemp("speech")
    rng = np.random.default_rng(0)
    for k, text in enumerate(["hello world", "cut taxes"]):
        item = root / f"item{k}"
        item.mkdir()
        speech = espeak(text, root / f"raw{k}.wav")
        loud = np.flatnonzero(np.abs(speech) > 0.01)
        speech = speech[max(0, loud[0] - SR // 10) : loud[-1] + SR // 10]
        noise = rng.standard_normal(speech.size)
        noise *= np.sqrt((speech**2).mean() / (noise**2).mean()) * 10 ** (-10 / 20)
        for name, x in (("speech", speech), ("noise", noise), ("mixture", speech + noise)):
            sf.write(item / f"{name}.wav", x, SR, subtype="FLOAT")
    return root


def test_benchmark_end_to_end(speech_folder, tmp_path, capsys):
    pytest.importorskip("pocketsphinx")
    for pkg in ("pyrnnoise", "noisereduce"):
        pytest.importorskip(pkg)
    bench = load_benchmark()
    out = tmp_path / "out.json"
    other = tmp_path / "other"  # a second set: its item1 alone, the first set's item0 alone
    shutil.copytree(speech_folder / "item1", other / "item1")
    argv = [str(speech_folder), str(other), "--limit", "1"]
    argv += ["--peers", "rnnoise,noisereduce", "--engine", "torch"]
    assert bench.main([*argv, "--json", str(out)]) == 0
    table = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert {"command", "versions", "wer_reference", "systems", "items", "table"} <= set(data)
    assert "clean speech" in data["wer_reference"] and "clean speech" in table
    names = [s["system"] for s in data["systems"]]
    assert names == ["mixture", "speech-rt (torch)", "RNNoise", "noisereduce", "clean"]
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert rows[1].startswith("| mixture ")  # first row after the header
    agg = {s["system"]: s for s in data["systems"]}
    for key in ("si_sdr", "si_sdr_i", "pesq", "stoi", "wer", "rtf_1thread", "latency_ms"):
        assert key in agg["RNNoise"]
    assert agg["clean"]["wer"] == 0 and agg["mixture"]["si_sdr_i"] == 0
    assert agg["RNNoise"]["latency_ms"] > 0 and agg["noisereduce"]["latency_ms"] is None
    assert agg["speech-rt (torch)"]["latency_ms"] == pytest.approx(16.0)
    assert len(data["items"]) == 2
    item = data["items"][0]
    assert set(item["systems"]) == set(names) and item["reference_transcript"]
    assert {"si_sdr", "pesq", "stoi", "transcript", "errors", "reference_words"} <= set(
        item["systems"]["RNNoise"]
    )
    assert item["systems"]["RNNoise"]["check_lag_ms"] == 0  # its delay was removed
    # each set on its own too, in the JSON and as a table
    assert list(data["per_set"]) == [str(speech_folder), str(other)]
    assert [r["dir"] for r in data["items"]] == list(data["per_set"])
    for name, rows in data["per_set"].items():
        assert [r["system"] for r in rows] == names and rows[0]["items"] == 1
        assert f"1 item(s) of {name}" in table
    pooled = agg["speech-rt (torch)"]["errors"]
    assert pooled == sum(rows[1]["errors"] for rows in data["per_set"].values())


def test_benchmark_bad_input_is_one_line(speech_folder, tmp_path, capsys):
    bench = load_benchmark()
    assert bench.main([str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert "not found" in err and len(err.splitlines()) == 1
    bad = tmp_path / "bad"
    shutil.copytree(speech_folder / "item0", bad / "item0")
    (bad / "item0" / "speech.wav").unlink()
    assert bench.main([str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "speech" in err and len(err.splitlines()) == 1


def test_benchmark_skips_a_missing_peer(speech_folder, tmp_path, monkeypatch, capsys):
    pytest.importorskip("pocketsphinx")
    bench = load_benchmark()

    def unavailable(name):
        raise PeerUnavailable(f"{name}: not installed; pip install it")

    monkeypatch.setattr(bench, "make_peer", unavailable)
    out = tmp_path / "out.json"
    argv = [str(speech_folder), "--models", "--peers", "dfn3", "--limit", "1"]
    assert bench.main([*argv, "--json", str(out)]) == 0
    assert "skipping peer dfn3" in capsys.readouterr().err
    data = json.loads(out.read_text())
    assert [s["system"] for s in data["systems"]] == ["mixture", "clean"]
    assert data["notes"] and "dfn3" in data["notes"][0]
