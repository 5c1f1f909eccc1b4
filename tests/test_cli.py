"""The ``seedcore`` dispatcher reaches every command module and refuses unknown ones."""

from __future__ import annotations

import importlib

import pytest

from seedcore_thin.cli import COMMANDS, main


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_a_main(command: str) -> None:
    module = importlib.import_module(f"seedcore_thin.cli.{command}")
    assert callable(module.main)


def test_unknown_command_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 1
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


def test_subcommand_help_is_the_command_s_own(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["reconcile", "--help"])
    assert exited.value.code == 0
    assert "--allow-mass-removal" in capsys.readouterr().out
