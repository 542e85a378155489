"""Every command's --help renders (argparse %-formats help strings, so a stray "%" crashes it)."""

from __future__ import annotations

import pytest

from rewardkit.cli import build_parser, main


def _commands() -> list[list[str]]:
    parser = build_parser()
    out: list[list[str]] = []

    def walk(p: object, prefix: list[str]) -> None:
        for action in getattr(p, "_actions", []):
            if action.__class__.__name__ == "_SubParsersAction":
                for name, child in action.choices.items():
                    out.append([*prefix, name])
                    walk(child, [*prefix, name])

    walk(parser, [])
    return out


def test_every_command_is_listed() -> None:
    names = {" ".join(c) for c in _commands()}
    assert {"quickstart", "data check", "data convert", "data synth", "train rm", "score"} <= names


@pytest.mark.parametrize("command", [[], *_commands()], ids=lambda c: " ".join(c) or "rewardkit")
def test_help_renders(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: rewardkit")
    assert "--help" in text
    assert "MISSING" not in text and "object at 0x" not in text  # no Python reprs as defaults
