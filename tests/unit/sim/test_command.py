"""``chatload sim``'s command line: its flags and their defaults, and what it refuses before
it binds anything (a bad settings file, a cluster it cannot simulate), with exit code 2 and
the reason on stderr."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from loadtest.sim.command import configure, main


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure(parser)
    return parser.parse_args(list(argv))


def test_the_defaults_bind_locally_with_no_cluster() -> None:
    args = parse()
    assert (args.host, args.port, args.replicas) == ("127.0.0.1", 3000, 0)
    assert not args.no_default_model and not args.no_agents_experiment


def test_an_unknown_era_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse("--era", "z")
    assert exited.value.code == 2 and "--era" in capsys.readouterr().err


def test_a_bad_settings_file_exits_2_naming_the_key_and_starts_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "sim.toml"
    config.write_text("error_rate = 5\n")
    assert main(parse("--config", str(config), "--port", "1")) == 2
    err = capsys.readouterr().err
    assert "invalid configuration" in err and "error_rate" in err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--replicas", "-1"], "--replicas -1: give at least 1"),
        (["--replicas", "2", "--era", "a"], "era d only"),
        (["--replicas", "2", "--legacy-replicas", "2"], "--legacy-replicas 2: from 0 to 1"),
        (["--replicas", "2", "--lease", "0"], "--lease must be above 0"),
    ],
)
def test_a_cluster_it_cannot_simulate_exits_2_with_the_reason(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(parse(*argv)) == 2
    assert says in capsys.readouterr().err
