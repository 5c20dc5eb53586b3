"""Where the real-recordings pool is found: an explicit setting, then ``$DEEPSAMPLER_TRAIN_REAL``,
then the default place next to the working directory; and that default is written only in
``data/real_pool.py``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from deepsampler.data import real_pool as rp
from deepsampler.data.real_pool import RealPool, find_pool_root
from deepsampler.errors import DeepSamplerError

SRC = Path(__file__).parents[2] / "src" / "deepsampler"
HEADER = "local_file\tcategory\tduration_s\n"


def make_pool(root: Path, name: str = "a") -> Path:
    """A one-file pool in ``root`` (the file need not be audio: the index only lists it)."""
    (root / "noise").mkdir(parents=True)
    (root / "noise" / f"{name}.flac").write_bytes(b"")
    (root / "MANIFEST.tsv").write_text(HEADER + f"noise/{name}.flac\tnoise\t1.5\n")
    return root


@pytest.fixture
def places(tmp_path, monkeypatch):
    """A working directory ``tmp/work`` with a pool at its default place (``tmp/shared/
    train-real``), another pool named by the environment, and a third to name explicitly."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    default = make_pool(tmp_path / "shared" / "train-real", "default")
    env = make_pool(tmp_path / "env-pool", "env")
    explicit = make_pool(tmp_path / "explicit-pool", "explicit")
    monkeypatch.setenv(rp.POOL_ENV, str(env))
    return {"default": default, "env": env, "explicit": explicit}


def test_the_environment_variable_wins_over_the_default_place(places):
    assert find_pool_root() == places["env"]
    assert find_pool_root("auto") == places["env"]
    pool = RealPool.default()
    assert pool.root == places["env"] and [f.path.name for f in pool.files] == ["env.flac"]


def test_a_setting_wins_over_the_environment_variable(places):
    assert find_pool_root(str(places["explicit"])) == places["explicit"]
    assert find_pool_root(places["explicit"]) == places["explicit"]
    pool = RealPool.from_setting(str(places["explicit"]))
    assert pool.root == places["explicit"] and pool.files[0].path.name == "explicit.flac"
    assert find_pool_root("none") is None
    assert not RealPool.from_setting("none") and RealPool.from_setting("none").root is None


def test_the_default_place_is_next_to_the_working_directory(places, monkeypatch):
    monkeypatch.delenv(rp.POOL_ENV)
    assert find_pool_root() == places["default"]
    assert rp.default_pool_path() == places["default"]
    monkeypatch.setenv(rp.POOL_ENV, str(places["env"].parent / "not-a-pool"))
    assert find_pool_root() == places["default"]  # a variable naming no pool falls through
    assert rp.pool_candidates()[0] == places["env"].parent / "not-a-pool"


def test_no_pool_anywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(rp.POOL_ENV, raising=False)
    assert find_pool_root() is None
    pool = RealPool.default()
    assert pool.root is None and not pool
    with pytest.raises(DeepSamplerError, match="MANIFEST"):
        RealPool.from_setting(tmp_path)
    assert rp.DEFAULT_POOL in rp.describe_auto() and rp.POOL_ENV in rp.describe_auto()


def test_real_stems_find_the_pool_through_the_setting(places, monkeypatch):
    from deepsampler.data import real_stems

    seen = []
    monkeypatch.setattr(real_stems, "pool_files", lambda root: seen.append(root) or [])
    monkeypatch.setattr(real_stems, "debian_files", lambda: [])
    with pytest.warns(UserWarning, match="no real stems"):
        real_stems.RealStemPool.from_default(16000, ("drums",))
        real_stems.RealStemPool.from_default(16000, ("drums",), root=str(places["explicit"]))
    assert seen == [places["env"], places["explicit"]]


# the default place is written once

#: ``shared/train-real`` however it is spelt in code: a path string or joined parts.
_DEFAULT_SPELLINGS = re.compile(r"""shared["']?\s*[/,]\s*["']?train-real""")
#: The only module allowed to name the default place.
_OWNER = Path("data") / "real_pool.py"
#: Command-line help texts, owned by the CLI package: they should show
#: ``real_pool.describe_auto()`` instead of spelling the place out (reported, not edited here).
_HELP_TEXTS = ("cli",)


def test_the_default_place_is_named_only_in_real_pool():
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        if rel == _OWNER or rel.parts[0].startswith(_HELP_TEXTS):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _DEFAULT_SPELLINGS.search(line):
                found.append(f"{rel}:{number}: {line.strip()}")
    assert found == []
    assert _DEFAULT_SPELLINGS.search((SRC / _OWNER).read_text(encoding="utf-8"))


def test_the_runtime_dataset_does_not_import_the_synthesiser():
    code = (
        "import sys, deepsampler.data.dataset, deepsampler.data.real_stems;"
        "print([m for m in sys.modules if m.startswith('deepsampler.data.synth')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
