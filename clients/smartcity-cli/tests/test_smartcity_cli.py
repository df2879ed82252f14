"""The `smartcity` command line without a gateway: version, help, completion, unreachable gateway."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smartcity.testing import free_port
from smartcity_cli import cli


def smartcity(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smartcity_cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=os.environ | {"SMARTCITY_TOKEN": "dev-command-center"} | env,
    )


def test_version() -> None:
    done = smartcity("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"smartcity {cli.version()}"
    assert cli.version() != "unknown"


def _parsers(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(parser.prog, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found += _parsers(child)
    return found


def test_every_flag_and_argument_has_help() -> None:
    missing = [
        f"{prog} {action.option_strings or action.dest}"
        for prog, parser in _parsers(cli.build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction)
        and (not action.help or action.help == argparse.SUPPRESS)
    ]
    assert missing == []


def test_help_shows_the_connection_settings() -> None:
    done = smartcity("--help")
    assert done.returncode == 0
    for words in ("SMARTCITY_GATEWAY", "--tls-system-ca", "--version", "completion"):
        assert words in done.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_prints_a_script_for_the_shell(shell: str) -> None:
    done = smartcity("completion", shell)
    assert done.returncode == 0 and "smartcity" in done.stdout
    assert ("complete " in done.stdout) if shell == "bash" else ("compdef" in done.stdout)


@pytest.mark.parametrize(
    "line, expected",
    [
        ("smartcity wat", {"watch"}),
        ("smartcity watch re", {"requests"}),
        ("smartcity --tls-s", {"--tls-system-ca"}),
    ],
)
def test_completion_completes_commands_choices_and_flags(
    tmp_path: Path, line: str, expected: set[str]
) -> None:
    """What the shell script asks: argcomplete's protocol, answered by the real entry point."""
    out = tmp_path / "completions"
    done = smartcity(
        _ARGCOMPLETE="1",
        _ARGCOMPLETE_IFS="\n",
        COMP_LINE=line,
        COMP_POINT=str(len(line)),
        _ARGCOMPLETE_STDOUT_FILENAME=str(out),
    )
    assert done.returncode == 0, done.stderr
    assert {word.strip() for word in out.read_text().split("\n") if word.strip()} == expected


def test_a_gateway_that_is_down_is_named_with_how_to_change_it() -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    done = smartcity("--timeout", "5", "snapshot", SMARTCITY_GATEWAY=address)
    assert done.returncode == 1
    assert "UNAVAILABLE" in done.stderr and f"could not reach the gateway at {address}" in done.stderr
    assert "--address HOST:PORT" in done.stderr and "SMARTCITY_GATEWAY" in done.stderr
    flag = smartcity("--address", address, "--timeout", "5", "snapshot")
    assert f"at {address}" in flag.stderr
