#!/usr/bin/env bash
# StemProver's every stage on a lent GPU (the device tool), from a packed excerpt corpus:
#   here:  .venv/bin/python scripts/pack_excerpts.py --data data/music4-4h/train --tracks 128 \
#              --seconds 5 --mono --no-mixture --vorbis 0.2 --out .devdata/music/train
#          (wheels the GPU image lacks in .whl/: soundfile cffi pycparser soxr diffusers
#           importlib_metadata lazy-importer rotary-embedding-torch array-api-compat, for CPython 3.12)
#   there: bash scripts/gpu_stemprover.sh [KEY=VALUE ...]   (carry .devdata and .whl)
# Writes the run folder's model, regression control, metrics and resolved config to $OUT.
# Extra KEY=VALUE arguments override the settings below (a dry run here: device=cpu, few steps).
set -euo pipefail
OUT="${OUT:-/tmp/sp-out}"
PY="${PY:-python3}"
WORK="${WORK:-/tmp/sp-work}"
mkdir -p "$OUT" "$WORK"
if [ -d .whl ]; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$WORK/site" .whl/*.whl
    export PYTHONPATH="$WORK/site"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
$PY scripts/unpack_excerpts.py .devdata/music "$WORK/music"
$PY -m deepsampler.cli stemprover cache --data "$WORK/music" --split train \
    --out "$WORK/cache" --model music4-rt -q
# every stage has a budget in minutes so the whole run ends inside one 10-minute device call:
# each stage measures its step rate and fits its one-cycle schedule to the steps the budget holds
timeout "${TRAIN_SECONDS:-480}" $PY -m deepsampler.cli stemprover train --config configs/stemprover.yaml \
    device=cuda threads=8 log_every=50 output_loss=0.02 \
    pairs.root="$WORK/music" pairs.channels=1 pairs.separator_cache="$WORK/cache" \
    pairs.separator_probability=0.6 pairs.pool_size=6000 pairs.artifact_pool_size=1500 \
    pairs.pool_workers=16 \
    autoencoder.steps=4000 autoencoder.batch_size=64 autoencoder.minutes=1.0 \
    base.steps=10000 base.batch_size=64 base.minutes=1.3 \
    control.steps=30000 control.batch_size=64 control.lr=1e-3 control.minutes=2.4 \
    regression.steps=30000 regression.batch_size=64 regression.lr=2e-3 regression.minutes=1.3 \
    adapters.steps=2000 adapters.batch_size=64 adapters.lr=1e-3 adapters.minutes=0.2 \
    "$@" --stages autoencoder,base,control,regression,adapters --out "$WORK/run" -q \
    || echo "gpu_stemprover: training stopped (rc $?); copying what it finished"
for f in stemprover.pt regression.pt metrics.jsonl config.yaml; do
    [ -f "$WORK/run/$f" ] && cp "$WORK/run/$f" "$OUT/"
done
ls -la "$OUT"
