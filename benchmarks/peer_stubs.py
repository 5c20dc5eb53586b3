"""Stand-ins for modules the peer packages import but their models do not use.

torchaudio, torchcodec and librosa (I/O, plotting, mel filters of a model we do not build) do not
load beside torch 2.13 (../shared/PEERS.md), and musdb needs ffmpeg. Importing this module first
registers empty modules under those names, so ``openunmix``, ``hs_tasnet`` and ``bs_roformer``
import; anything that really calls into a stand-in fails loudly (its attributes are None).
"""

from __future__ import annotations

import sys
import types

STUBS = (
    "torchaudio",
    "torchaudio.transforms",
    "torchaudio.functional",
    "torchcodec",
    "torchcodec.encoders",
    "librosa",
    "librosa.filters",
    "musdb",
)


def install() -> None:
    for name in STUBS:
        if name not in sys.modules:
            stub = types.ModuleType(name)
            stub.resample = stub.AudioEncoder = stub.DB = stub.mel = None
            sys.modules[name] = stub
    sys.modules["torchaudio"].transforms = sys.modules["torchaudio.transforms"]
    sys.modules["torchaudio"].functional = sys.modules["torchaudio.functional"]
    sys.modules["librosa"].filters = sys.modules["librosa.filters"]
    sys.modules["torchcodec"].encoders = sys.modules["torchcodec.encoders"]


install()
