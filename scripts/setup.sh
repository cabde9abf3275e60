#!/usr/bin/env bash
# Fresh-machine setup: Debian packages for the NEST module build (and the speech synthesisers
# espeak-ng, flite and festival with three English voices for the synthesised speech set), then a
# virtual environment .venv with cortical_gle installed.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
need=()
for pkg in libboost-dev libgsl-dev libltdl-dev cmake g++ make espeak-ng sox flite festival festvox-kallpc16k \
           festvox-kdlpc16k festvox-us-slt-hts; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), "cortical_gle pins Python 3.11 (brian2 2.9.0, NEST 3.10 wheels)"'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
echo "setup: done (.venv/bin/cortical-gle)"
