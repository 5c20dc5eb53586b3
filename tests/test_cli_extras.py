"""The CLI's hint for a missing optional package names the extra that pyproject.toml says
installs it (the map is kept in deepsampler/cli/_extras.py, not read from the metadata)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from deepsampler.cli import main
from deepsampler.cli._extras import DISTRIBUTIONS, EXTRAS, install_hint

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement (``scipy>=1.10`` -> ``scipy``)."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement.strip()).group(0)
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_extra_in_the_map_installs_its_module():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    for module, extra in EXTRAS.items():
        dist = _name(DISTRIBUTIONS.get(module, module))
        assert extra in extras, f"{module}: extra {extra!r} is not in pyproject.toml"
        assert dist in {_name(r) for r in extras[extra]}, f"{extra} does not install {dist}"
        first = next(e for e, reqs in extras.items() if e != "dev" and dist in map(_name, reqs))
        assert extra == first, f"{module}: {first!r} is the first extra that installs {dist}"


def test_install_hint():
    assert install_hint("pesq") == "pip install 'deepsampler[eval]'"
    assert install_hint("fluidsynth") == "pip install 'deepsampler[data]'"
    assert install_hint("torch") == "reinstall"
    assert install_hint("onnxruntime") == "reinstall"  # a core dependency since issue 28


def test_missing_package_is_one_line(monkeypatch, capsys):
    import deepsampler.cli.models as models

    def missing(args):
        raise ModuleNotFoundError("No module named 'onnxruntime.capi'", name="onnxruntime.capi")

    monkeypatch.setattr(models, "cmd_info", missing)  # build_parser reads it at each call
    assert main(["info", "--preset", "tiny"]) == 1
    err = capsys.readouterr().err
    assert err == ("deepsampler: error: this command needs the 'onnxruntime' package: reinstall\n")
