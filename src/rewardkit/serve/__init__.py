"""The reward server: batched HTTP scoring that OpenRLHF and verl can call (``rewardkit serve``).

``create_app(scorer, settings)`` builds the FastAPI app; ``serve(scorer, settings)`` runs it under uvicorn.
Attributes are imported lazily so that ``rewardkit --help`` does not load FastAPI or torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ServeSettings", "create_app", "serve"]
_LAZY = {"ServeSettings": "rewardkit.serve.settings", "create_app": "rewardkit.serve.app",
         "serve": "rewardkit.serve.server"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
