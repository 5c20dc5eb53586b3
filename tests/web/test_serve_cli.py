"""`deepsampler serve`: its options reach the app's settings and uvicorn; a host other than
localhost is warned about; bad values are one line."""

from __future__ import annotations

import pytest

from deepsampler.cli import main

pytest.importorskip("fastapi", reason="the web tests need the web extra (fastapi)")
uvicorn = pytest.importorskip("uvicorn", reason="the web tests need the web extra (uvicorn)")


@pytest.fixture
def ran(monkeypatch):
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    return calls


def test_serve_starts_uvicorn_with_the_options(ran, tmp_path, capsys):
    data = tmp_path / "data"
    argv = [
        "serve",
        "--port",
        "8123",
        "--data-dir",
        str(data),
        "--workers",
        "0",
        "--keep-hours",
        "2",
        "--max-upload-mb",
        "5",
        "--max-live",
        "1",
    ]
    assert main(argv) == 0
    (app, kw) = ran[0]
    assert kw["host"] == "127.0.0.1" and kw["port"] == 8123
    s = app.state.settings
    assert (s.data_dir, s.workers, s.keep_hours, s.max_upload_mb, s.max_live) == (
        data,
        0,
        2.0,
        5.0,
        1,
    )
    assert (data / "jobs.sqlite3").is_file()
    out = capsys.readouterr().out
    assert out.startswith("DeepSampler web app on http://127.0.0.1:8123/ (API docs at /docs)")
    assert "warning" not in out


def test_serve_warns_when_listening_beyond_localhost(ran, tmp_path, capsys):
    assert main(["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("warning: listening on 0.0.0.0: anyone who can")


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--port", "70000"], "--port 70000: use 1 to 65535"),
        (["--keep-hours", "0"], "--keep-hours 0.0: use a time > 0"),
        (["--max-upload-mb", "-1"], "--max-upload-mb -1.0: use a size > 0"),
    ],
)
def test_bad_values_are_one_line(ran, tmp_path, capsys, args, error):
    assert main(["serve", "--data-dir", str(tmp_path), *args]) == 1
    assert capsys.readouterr().err == f"deepsampler: error: {error}\n"
    assert ran == []
