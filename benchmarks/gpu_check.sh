#!/usr/bin/env bash
# rewardkit on a GPU machine, in one call: the packages its Python lacks (wheels carried in .whl: datasets
# and its two missing dependencies), then benchmarks/gpu_check.py, whose JSON goes to stdout and $OUT.
#   device run: bash benchmarks/gpu_check.sh   (carry .whl and .gpu: SmolLM2's tokenizer files)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD/src:${PYTHONPATH:-} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 benchmarks/gpu_check.py --tokenizer "${TOKENIZER:-.gpu/tokenizer}" --out "${OUT:-/tmp}/gpu_check.json" \
  2> >(tail -c 4000 >&2)
