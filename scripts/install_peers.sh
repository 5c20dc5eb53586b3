#!/usr/bin/env bash
# Installs the peer packages for side-by-side benchmarks (../shared/PEERS.md) into .venv without
# letting them replace torch 2.13.0: the peers with --no-deps, then their light dependencies under
# a torch==2.13.0 constraint. Their torchaudio/torchcodec/librosa/musdb imports are stubbed by the
# benchmarks (those packages do not load beside this torch and the models do not need them).
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=".venv/bin/python -m pip"
$PIP install -q --no-deps openunmix demucs bs-roformer hs-tasnet
$PIP install -q --no-deps hyper-connections pope-pytorch rotary-embedding-torch torch-einops-utils \
    ema-pytorch mingru-pytorch log-depth-recurrent-modeling accelerate x-mlps-pytorch
$PIP install -q -c .venv/torch-constraint.txt numpy tqdm einops einx beartype julius pyyaml \
    packaging psutil safetensors huggingface-hub soundfile loguru
echo "peers: installed ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
