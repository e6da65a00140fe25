"""``chatload``: one entry point whose every subcommand has ``configure`` and ``main``."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

import pytest

from loadtest import __version__
from loadtest.cli import COMMANDS, main


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_subcommand_configures_a_parser_and_runs(name: str) -> None:
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser()
    module.configure(parser)
    assert callable(module.main)
    assert parser.format_help()


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"chatload {__version__}"
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and all(name in out for name in COMMANDS)


def test_no_or_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["frobnicate"]):
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 2
    assert "frobnicate" in capsys.readouterr().err


def test_the_chosen_command_gets_its_own_flags_and_its_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path / "missing.json")]) == 2
    assert "no such file" in capsys.readouterr().err
