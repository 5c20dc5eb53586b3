"""The live websocket through FastAPI's TestClient: blocks in, as many samples of the chosen
stem out, equal to the streaming engine run over the whole signal; refusals as one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.web.conftest import SR

pytest.importorskip("fastapi", reason="the web tests need the web extra (fastapi)")
pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx")

START = {"model": "tiny", "stem": "drums", "sample_rate": SR}


def test_blocks_come_back_separated_sample_for_sample(client, tiny_checkpoint):
    from deepsampler.separator import Separator

    rng = np.random.default_rng(3)
    sizes = [300, 128, 1000, 7, 512, 2048, 64, 300, 900, 441, 256, 128]
    blocks = [(0.2 * rng.standard_normal(n)).astype(np.float32) for n in sizes]
    out, stats = [], []
    with client.websocket_connect("/api/live") as ws:
        ws.send_text(json.dumps(START))
        ready = ws.receive_json()
        assert ready["type"] == "ready" and ready["sample_rate"] == SR and ready["hop"] == 128
        assert ready["latency_ms"] == pytest.approx(11.61, abs=0.01)
        for block in blocks:
            ws.send_bytes(block.tobytes())
            reply = np.frombuffer(ws.receive_bytes(), dtype="<f4")
            assert reply.shape == block.shape
            out.append(reply)
            if len(out) % 10 == 0:
                stats.append(ws.receive_json())
    assert [s["type"] for s in stats] == ["stats"] and stats[0]["blocks"] == 10
    assert stats[0]["missed"] >= 0 and stats[0]["p50_ms"] > 0
    # the same stream in one piece through a fresh engine: the stem, channels averaged
    engine = Separator(tiny_checkpoint).streaming_engine("torch")
    whole = np.concatenate(blocks)
    y, _ = engine.step(np.stack([whole, whole]), engine.init_state())
    expected = y.numpy()[1].mean(axis=0)  # drums
    np.testing.assert_allclose(np.concatenate(out), expected, atol=1e-5)
    assert np.abs(expected[engine.latency_samples :]).max() > 1e-3  # not silence


@pytest.mark.parametrize(
    ("start", "error"),
    [
        ({**START, "model": "nope"}, "unknown model 'nope'; choose one of ['tiny']"),
        ({**START, "stem": "piano"}, "stem 'piano': model tiny gives vocals, drums, bass, other"),
        ({**START, "sample_rate": 48000}, "sample rate 48000: send audio at the model's 22050 Hz"),
        ([1, 2], "start with a JSON object: model, stem, sample_rate"),
    ],
)
def test_a_bad_start_is_refused_in_one_line(client, start, error):
    with client.websocket_connect("/api/live") as ws:
        ws.send_text(json.dumps(start))
        assert ws.receive_json() == {"type": "error", "error": error}


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"abc", "a block is mono float32 samples: a non-empty multiple of 4 bytes"),
        (
            np.zeros(SR + 1, np.float32).tobytes(),
            "a block holds at most one second (22050 samples)",
        ),
        (np.array([0.0, np.nan], np.float32).tobytes(), "a block holds NaN/Inf samples"),
    ],
)
def test_a_bad_block_ends_the_session_in_one_line(client, data, error):
    with client.websocket_connect("/api/live") as ws:
        ws.send_text(json.dumps(START))
        assert ws.receive_json()["type"] == "ready"
        ws.send_bytes(data)
        assert ws.receive_json() == {"type": "error", "error": error}


def test_live_sessions_are_bounded(client):
    # the fixture's settings allow 2 at once; a third is refused until one ends
    with client.websocket_connect("/api/live") as one, client.websocket_connect("/api/live") as two:
        for ws in (one, two):
            ws.send_text(json.dumps(START))
            assert ws.receive_json()["type"] == "ready"
        with client.websocket_connect("/api/live") as three:
            assert three.receive_json() == {
                "type": "error",
                "error": "the server runs 2 live session(s) at most; try later",
            }
    with client.websocket_connect("/api/live") as ws:
        ws.send_text(json.dumps(START))
        assert ws.receive_json()["type"] == "ready"
