"""``deepsampler stream --input-device pulse --transcribe`` end to end: live captions through a
real audio stack (PortAudio -> ALSA pulse plugin -> a private PulseAudio server, see
tests/pulse_server.py).

espeak-ng's digits sentence with white noise 15 dB below it is played into the server's null
sink with paplay while the CLI, in a child process, separates the sink's monitor live with
speech-rt and prints caption lines. The final lines must read the sentence (word error rate
bound as for the file path in tests/test_transcribe.py); partial lines must come before the
final; the run ends by ``--seconds`` with status 0.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("pocketsphinx")
jiwer = pytest.importorskip("jiwer")

DIGITS = "one two three four five six seven eight nine zero"
SECONDS = 10.0  # the live run; the clip (about 5 s) starts 2 s after the device opens
FIRST_CALLBACK = 2.0  # the pulse plugin's first callback comes ~1.7 s after the stream opens
CLI = "import sys; from deepsampler.cli import main; sys.exit(main())"


def noisy_digits(path: Path) -> None:
    """espeak-ng's digits, half a second of silence each side, white noise 15 dB below the
    speech, peaks at -6 dBFS (a stream is not rescaled before the recogniser)."""
    spoken = path.with_name("digits.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "-w", str(spoken), DIGITS], check=True)
    x, sr = sf.read(spoken, dtype="float32")
    pad = np.zeros(sr // 2, np.float32)
    clean = np.concatenate([pad, x, pad])
    noise = np.random.default_rng(0).standard_normal(clean.shape).astype(np.float32)
    noisy = clean + noise * np.sqrt(np.mean(x**2)) / 10 ** (15 / 20)
    sf.write(path, 0.5 * noisy / np.abs(noisy).max(), sr, subtype="FLOAT")


def test_live_captions_through_pulseaudio(tmp_path):
    from tests.pulse_server import pulse_server_or_skip

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt install espeak-ng)")
    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError) as exc:
        pytest.skip(f"live audio unavailable: {exc}")
    clip = tmp_path / "noisy_digits.wav"
    noisy_digits(clip)
    args = ["stream", "--input-device", "pulse", "--transcribe", "--seconds", str(SECONDS)]
    with pulse_server_or_skip(16000, 1) as server:
        env = server.child_env()
        child = subprocess.Popen(
            [sys.executable, "-c", CLI, *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines = []
        assert child.stdout is not None
        for line in child.stdout:  # the model loads, then "live: ..." once the device is open
            lines.append(line)
            if line.startswith("live:"):
                break
        time.sleep(FIRST_CALLBACK)
        played = subprocess.run(["paplay", str(clip)], env=env, capture_output=True, text=True)
        out, err = child.communicate(timeout=SECONDS + 60)
        lines += out.splitlines(keepends=True)
        log = "".join(lines) + err + "\n--- pulseaudio ---\n" + server.log()
    assert played.returncode == 0, played.stderr
    assert child.returncode == 0, log
    events = [
        m.groups()
        for m in (re.fullmatch(r"(partial|final) +[\d.]+- *[\d.]+  (.*)\n", x) for x in lines)
        if m
    ]
    finals = [text for kind, text in events if kind == "final" and text != "(nothing)"]
    assert finals, log
    assert events[0][0] == "partial", log  # captions grew before the sentence was decided
    print("\nlive captions:", finals)
    # the file path reads these digits exactly; bound as there
    assert jiwer.wer(DIGITS, " ".join(finals)) < 0.4, log
