"""``deepsampler batch`` without Ray (a pool over a list file, tracks mirroring the catalogue)
and its option errors: each one line, before any work."""

from __future__ import annotations

import socket
import sys

import pytest

from deepsampler.cli import main
from tests.batch.conftest import TRACKS, assert_same_stems, manifest


def test_a_list_file_on_a_pool_equals_separate(catalogue, reference, tiny_checkpoint, tmp_path):
    listing = catalogue.parent / "list.txt"
    listing.write_text("# the catalogue\n" + "".join(f"in/{t}.wav\n" for t in TRACKS))
    out = tmp_path / "out"
    args = ["batch", str(listing), "-o", str(out), "--model", str(tiny_checkpoint), "-q"]
    assert main([*args, "--jobs", "2"]) == 0
    # tracks are the paths relative to the list's folder: in/<track>
    assert_same_stems(reference, out / "in")
    assert sorted(r["track"] for r in manifest(out)) == [f"in/{t}" for t in TRACKS]
    assert main(args) == 0 and len(manifest(out)) == len(TRACKS)  # nothing to do


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--actors", "2"], "--actors and --gpus-per-actor go with --ray"),
        (["--ray", "--jobs", "2"], "--jobs is for a local pool; on Ray say --actors N"),
        (["--ray", "--gpus-per-actor", "-1"], "--gpus-per-actor -1.0: use 0 or more"),
        (["--ray", "127.0.0.1:PORT"], "--ray 127.0.0.1:PORT: no Ray cluster answers there"),
    ],
)
def test_bad_options(catalogue, tiny_checkpoint, tmp_path, capsys, extra, message):
    pytest.importorskip("ray")
    port = str(free_port())
    extra = [e.replace("PORT", port) for e in extra]
    out = tmp_path / "o"
    argv = ["batch", str(catalogue), "-o", str(out), "--model", str(tiny_checkpoint), "-q"]
    assert main([*argv, *extra]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"deepsampler: error: {message.replace('PORT', port)}")
    assert len(err.splitlines()) == 1
    assert not out.exists()  # refused before any work


def test_without_ray_the_hint_names_the_extra(catalogue, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    assert main(["batch", str(catalogue), "-o", str(tmp_path / "o"), "--ray"]) == 1
    assert capsys.readouterr().err == (
        "deepsampler: error: --ray needs Ray with its Data library: "
        "pip install 'deepsampler[cluster]'\n"
    )
