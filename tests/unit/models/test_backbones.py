"""Offline aliases whose PyPI package is missing fail with the pip command to run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rewardkit.models import backbones
from rewardkit.models.backbones import BackboneNotFoundError, GgufAlias, resolve_backbone


def test_a_missing_gguf_package_names_the_pip_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDKIT_CACHE", str(tmp_path))
    alias = GgufAlias("rewardkit_no_such_pkg", "pip install no-such-pkg==1.0.0", "x.gguf", "x", assembled=True)
    monkeypatch.setitem(backbones.GGUF_ALIASES, "gemma3-270m", alias)
    with pytest.raises(BackboneNotFoundError, match=r"'rewardkit_no_such_pkg': pip install no-such-pkg==1\.0\.0"):
        resolve_backbone("gemma3-270m")


def test_a_missing_part_wheel_names_the_pip_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "src" / "rewardkit_fake_parts"  # the main package present, a part package missing
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "from importlib import import_module\n"
        "def assemble(path):\n"
        "    import_module('rewardkit_fake_parts_part1')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    monkeypatch.setenv("REWARDKIT_CACHE", str(tmp_path / "cache"))
    alias = GgufAlias("rewardkit_fake_parts", "pip install fake-parts==1.0.0", "x.gguf", "x", assembled=True)
    monkeypatch.setitem(backbones.GGUF_ALIASES, "gemma3-270m", alias)
    with pytest.raises(BackboneNotFoundError, match=r"parts are incomplete .*part1.*: pip install fake-parts==1\.0\.0"):
        resolve_backbone("gemma3-270m")
    assert not any((tmp_path / "cache").iterdir())  # the temporary GGUF folder is gone
    sys.modules.pop("rewardkit_fake_parts", None)



def test_a_missing_package_is_exit_2_on_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from rewardkit.cli.main import main

    monkeypatch.setenv("REWARDKIT_CACHE", str(tmp_path))
    alias = GgufAlias("rewardkit_no_such_pkg", "pip install no-such-pkg==1.0.0", "x.gguf", "x", assembled=True)
    monkeypatch.setitem(backbones.GGUF_ALIASES, "gemma3-270m", alias)
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "hi"}\n')
    code = main(["generate", "--policy", "gemma3-270m", "--reward", "length", "--prompts", str(prompts),
                 "--out", str(tmp_path / "o.jsonl"), "--n", "1", "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "pip install no-such-pkg==1.0.0" in err and "Traceback" not in err
