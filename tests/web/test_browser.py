"""The page in a real browser: Debian's Chromium driven by Playwright (never `playwright
install`), the app served by uvicorn on a free port. A file goes from upload to stems that
play and download as a zip; the live page separates Chromium's fake microphone."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.web.conftest import SR, siren_wav_bytes, wav_bytes

CHROMIUM = Path("/usr/bin/chromium")
pytest.importorskip("fastapi", reason="the web tests need the web extra (fastapi)")
pytest.importorskip("uvicorn", reason="the web tests need the web extra (uvicorn)")
pytest.importorskip("playwright", reason="the browser tests need playwright (the dev extra)")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="the browser tests need Debian's chromium (apt-get install chromium; "
    "scripts/setup.sh installs it with the dev extra)",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_checkpoint):
    from deepsampler.web import Settings
    from deepsampler.web.server import serve_in_thread

    settings = Settings(
        data_dir=tmp_path_factory.mktemp("web"), models={"tiny": tiny_checkpoint}, engine="torch"
    )
    with serve_in_thread(settings) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    # the fake microphone: a 440 Hz tone with noise, looped by Chromium
    mic = tmp_path_factory.mktemp("mic") / "mic.wav"
    mic.write_bytes(wav_bytes(2.0, sr=48000, channels=1, seed=5))
    args = [
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic}",
        "--no-sandbox",
    ]
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=args, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server)
    yield page
    context.close()
    assert errors == []  # no uncaught JavaScript error


def test_separate_play_and_download_a_file(page, tmp_path):
    song = tmp_path / "song.wav"
    song.write_bytes(wav_bytes(2.0))
    page.wait_for_selector("#model option[value=tiny]", state="attached")
    page.set_input_files("#file", str(song))
    page.click("#start")
    page.wait_for_selector("#results:not([hidden])", timeout=60_000)
    assert page.text_content("#job-status").startswith("done: song.wav, 2.0 s with tiny")
    rows = page.eval_on_selector_all(".stem", "els => els.map(e => e.dataset.stem)")
    assert rows == ["vocals", "drums", "bass", "other"]
    assert page.is_hidden("#error")
    # play: the shared clock moves on, and pausing holds it
    page.click("#play")
    page.wait_for_function("Number(document.getElementById('position').dataset.time) > 0.3")
    page.click("#play")
    held = float(page.get_attribute("#position", "data-time"))
    page.wait_for_timeout(300)
    assert float(page.get_attribute("#position", "data-time")) == held
    # solo one stem, mute another, set a gain: the gains the stems are given
    page.click(".stem[data-stem=drums] .solo")
    page.click(".stem[data-stem=bass] .solo")
    page.click(".stem[data-stem=bass] .mute")
    page.fill(".stem[data-stem=drums] input[type=range]", "0.5")
    gains = page.evaluate("deepsampler.player.stems.map(s => s.applied)")
    assert gains == [0, 0.5, 0, 0]
    with page.expect_download() as info:
        page.click("#zip")
    data = Path(info.value.path()).read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert sorted(z.namelist()) == ["bass.wav", "drums.wav", "other.wav", "vocals.wav"]
        for name in z.namelist():
            audio, sr = sf.read(io.BytesIO(z.read(name)), always_2d=True)
            assert sr == SR and audio.shape == (2 * SR, 2)


def test_an_unreadable_file_is_one_line_on_the_page(page, tmp_path):
    fake = tmp_path / "notes.wav"
    fake.write_text("this is text, not audio\n" * 10)
    page.wait_for_selector("#model option[value=tiny]", state="attached")
    page.set_input_files("#file", str(fake))
    page.click("#start")
    page.wait_for_selector("#error:not([hidden])")
    assert page.text_content("#error").startswith("notes.wav: not an audio file")


def test_live_page_separates_the_fake_microphone(page):
    page.click("#live-tab")
    page.wait_for_selector("#live-model option[value=tiny]", state="attached")
    page.select_option("#live-stem", "other")
    page.click("#live-start")
    page.wait_for_function(
        "Number(document.getElementById('live-received').dataset.samples) > 22050",
        timeout=30_000,
    )
    assert page.text_content("#live-latency").startswith("11.6 ms (tiny, other)")
    assert "ms per 1024-sample block" in page.text_content("#live-rtt")
    assert "on the server" in page.text_content("#live-missed")
    live = page.evaluate("({n: deepsampler.live.received, sumsq: deepsampler.live.sumsq})")
    assert np.sqrt(live["sumsq"] / live["n"]) > 1e-3  # the stem of a tone, not silence
    page.click("#live-stop")
    assert page.is_enabled("#live-start") and page.is_hidden("#error")


def test_detected_events_are_drawn_on_the_timeline(
    browser, tmp_path, separator_path, siren_detector
):
    """A job of the siren detector's separator: a band per event over each stem, and the list."""
    from deepsampler.web import Settings
    from deepsampler.web.server import serve_in_thread

    street = tmp_path / "street.wav"
    street.write_bytes(siren_wav_bytes())
    settings = Settings(
        data_dir=tmp_path / "web", models={"siren": separator_path}, detector=siren_detector
    )
    with serve_in_thread(settings) as url:
        context = browser.new_context()
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector("#model option[value=siren]", state="attached")
        assert page.text_content("#model-info").endswith("| siren events detected too")
        page.set_input_files("#file", str(street))
        page.click("#start")
        page.wait_for_selector("#results:not([hidden])", timeout=60_000)
        listed = page.text_content("#events")
        assert re.fullmatch(r"siren \d+\.\d-\d+\.\d s \(0\.\d\d\)(, .+)?", listed), listed
        bands = page.eval_on_selector_all(
            ".stem .event", "els => els.map(e => [e.closest('.stem').dataset.stem, e.title])"
        )
        n = listed.count("siren ")
        assert [b[0] for b in bands] == ["siren"] * n + ["background"] * n
        assert ", ".join(b[1] for b in bands[:n]) == listed
        width = page.eval_on_selector(".stem .event", "e => e.getBoundingClientRect().width")
        assert width > 1 and errors == []
        context.close()


@pytest.mark.slow
def test_shipped_music_model_separates_the_example_and_streams_live(browser, tmp_path):
    """The shipped music4-rt end to end: the bundled example through the page, and the live
    page on the default (onnx) engine."""
    from deepsampler.web import Settings
    from deepsampler.web.server import serve_in_thread

    example = Path(__file__).resolve().parents[2] / "src/deepsampler/examples/synth_rock.flac"
    with serve_in_thread(Settings(data_dir=tmp_path / "web")) as url:
        context = browser.new_context()
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#model option[value=music4-rt]", state="attached")
        page.select_option("#model", "music4-rt")
        page.set_input_files("#file", str(example))
        page.click("#start")
        page.wait_for_selector("#results:not([hidden])", timeout=300_000)
        assert page.text_content("#job-status") == "done: synth_rock.flac, 10.0 s with music4-rt"
        page.click("#live-tab")
        page.select_option("#live-model", "music4-rt")
        page.select_option("#live-stem", "vocals")
        page.click("#live-start")
        page.wait_for_function(
            "Number(document.getElementById('live-received').dataset.samples) > 44100",
            timeout=120_000,
        )
        assert page.text_content("#live-latency").startswith("20.3 ms (music4-rt, vocals)")
        page.click("#live-stop")
        assert page.is_hidden("#error")
        context.close()
