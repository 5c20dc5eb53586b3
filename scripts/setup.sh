#!/usr/bin/env bash
# Sets up DeepSampler on a fresh Debian machine: Debian packages, a virtual environment in .venv,
# torch==2.13.0 first (a CPU wheel on this machine kind; an unpinned torch would pull a CUDA build),
# then the package itself with the extras given as arguments (e.g. `scripts/setup.sh dev`).
set -euo pipefail
cd "$(dirname "$0")/.."

EXTRAS="${1:-}"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
TORCH_PIN="torch==2.13.0"

# --- Debian packages (one per line in packaging/apt-*.txt; '#' starts a comment) ---
APT_LISTS=(packaging/apt-packages.txt)
# the corpus synthesiser's packages come with the data extra (and dev, whose tests render)
[[ ",$EXTRAS," =~ ,(data|dev), ]] && APT_LISTS+=(packaging/apt-data.txt)
# real siren recordings (held-out streams, siren training), with the data extra only
[[ ",$EXTRAS," =~ ,data, ]] && APT_LISTS+=(packaging/apt-sirens.txt)
# the live-audio test's private PulseAudio server (null sink, ALSA pulse plugin) comes with dev
[[ ",$EXTRAS," =~ ,dev, ]] && APT_LISTS+=(packaging/apt-dev.txt)
mapfile -t APT_PKGS < <(cat "${APT_LISTS[@]}" | sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d')
missing=()
for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "setup: installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --- Python environment ---
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip
echo "$TORCH_PIN" > "$VENV/torch-constraint.txt"
$VENV/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null \
    || $PIP install -q "$TORCH_PIN"
spec="."
[ -n "$EXTRAS" ] && spec=".[$EXTRAS]"
$PIP install -q -c "$VENV/torch-constraint.txt" -e "$spec"
echo "setup: ready ($($VENV/bin/python -c 'import torch; print("torch", torch.__version__)'))"
