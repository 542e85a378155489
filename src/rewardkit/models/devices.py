"""Where models run and in which precision: ``--device auto`` and ``--dtype auto``, decided here only.

``auto`` device: CUDA if available, else Apple MPS, else CPU. ``auto`` dtype for a model's weights:
bfloat16 on a CUDA device with native bf16, else float32. CPUs keep float32 weights even where they have
native bf16 (AVX-512 BF16 / AMX): bf16 weights move scores by ~1e-2, so a CPU score would no longer equal
plain transformers' fp32 score; training on such CPUs still gets bf16 *autocast* (fp32 master weights)
from ``--precision auto`` (:func:`resolve_precision`). Without native support bf16 matmuls are emulated
and hundreds of times slower. Every command takes ``--device`` and ``--dtype`` with these defaults and
resolves them here.
"""

from __future__ import annotations

import torch

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DTYPE_CHOICES = ("auto", *DTYPES)


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """``auto``/None -> cuda, else mps, else cpu; anything else is passed to :class:`torch.device`."""
    if spec is None or str(spec) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        return torch.device(spec)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"--device: {spec!r} is not a torch device (auto, cpu, cuda, cuda:1, mps)") from e


def native_bf16(device: torch.device) -> bool:
    """True where bfloat16 matmuls run natively on ``device``."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        cpu = torch.cpu
        return bool(getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
                    or getattr(cpu, "_is_amx_tile_supported", lambda: False)())
    return False


def resolve_dtype(spec: str | torch.dtype | None = "auto", device: str | torch.device | None = "auto") -> torch.dtype:
    """``auto``/None -> bfloat16 on a CUDA device with native bf16, else float32; or a name from :data:`DTYPES`."""
    if isinstance(spec, torch.dtype):
        return spec
    if spec is None or spec == "auto":
        where = resolve_device(device)
        return torch.bfloat16 if where.type == "cuda" and native_bf16(where) else torch.float32
    if spec not in DTYPES:
        raise ValueError(f"--dtype: unknown dtype {spec!r}; use one of {list(DTYPE_CHOICES)}")
    return DTYPES[spec]


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def resolve_precision(precision: str, device: str | torch.device | None = "auto") -> str:
    """Training's mixed precision: ``auto`` -> ``bf16`` autocast where :func:`native_bf16` (CUDA with bf16,
    CPUs with AVX-512 BF16 / AMX), else ``fp32``; ``bf16``/``fp32`` as given."""
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(resolve_device(device)) else "fp32"
