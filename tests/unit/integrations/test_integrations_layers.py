"""Layers: the trainer-side reward functions never load the server, and the server never loads the command
line (``rewardkit.cli`` plugs ``serve`` in, not the other way round). Checked in fresh interpreters."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _loaded_after(imports: str, packages: tuple[str, ...]) -> list[str]:
    """The modules of ``packages`` a fresh interpreter has loaded after running ``imports``."""
    code = (f"import sys\n{imports}\n"
            f"print(sorted(m for m in sys.modules for p in {packages!r} if m == p or m.startswith(p + '.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return eval(out.stdout)  # a printed list of module names


# Each runs the code paths that used to import across (lazily, inside functions): reading the key file,
# and adding the `serve` command to a parser.
INTEGRATIONS = """
import os, tempfile, rewardkit.integrations.verl, rewardkit.integrations.openrlhf
from rewardkit.integrations import server_config
with tempfile.NamedTemporaryFile("w", suffix=".key", delete=False) as f:
    f.write("k3y\\n")
os.environ["REWARDKIT_API_KEY_FILE"] = f.name
assert server_config("http://h:1") == ("http://h:1", "k3y")
"""
SERVE = """
import argparse, rewardkit.serve.cli, rewardkit.serve.app, rewardkit.serve.server
rewardkit.serve.cli.add_commands(argparse.ArgumentParser().add_subparsers())
"""


@pytest.mark.parametrize("imports, forbidden", [(INTEGRATIONS, ("rewardkit.serve", "rewardkit.cli")),
                                                (SERVE, ("rewardkit.cli",))], ids=["integrations", "serve"])
def test_a_layer_does_not_load_the_layers_beside_it(imports: str, forbidden: tuple[str, ...]) -> None:
    assert _loaded_after(imports, forbidden) == []
