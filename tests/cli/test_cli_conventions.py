"""The command's conventions: -V, usage errors on stderr, global options on either side
of the command, shell completion that a real bash runs."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from nbconductor._version import __version__
from nbconductor.cli import build_parser
from nbconductor.cli.completion import completion_script


def test_short_version_flag(cli):
    result = cli("-V")
    assert result.code == 0
    assert result.out.strip() == f"nbconductor {__version__}"


def test_usage_errors_go_to_stderr_only(cli):
    for argv in [(), ("frobnicate",), ("show",), ("list", "--limit", "many")]:
        result = cli(*argv)
        assert result.code == 2, argv
        assert result.out == "", argv
        assert "usage: nbconductor" in result.err, argv


@pytest.mark.parametrize("where", ["before", "after"])
def test_global_options_before_or_after_the_command(cli, db, where):
    options = ["--json", "--db", str(db), "--timeout", "5"]
    argv = [*options, "list"] if where == "before" else ["list", *options]
    result = cli(*argv)
    assert result.code == 0, result.err
    assert isinstance(result.json, list) and result.json  # JSON, from the file given


def test_json_before_the_command_shapes_errors_too(cli, tmp_path):
    result = cli("--json", "--db", str(tmp_path / "none.duckdb"), "show", "x")
    assert result.code == 2
    assert '"error"' in result.err


def test_json_before_sql_and_schedules(cli, db):
    assert cli("--json", "--db", str(db), "sql", "select 1 as one").json["rows"] == [[1]]
    assert [s["id"] for s in cli("--json", "--db", str(db), "schedules").json] == ["hourly"]


def _complete(shell: str, line: str) -> list[str]:
    """Run the generated script in a real bash, as the shell would on TAB."""
    words = line.split(" ")
    probe = (
        completion_script(build_parser(), shell).replace("autoload -U +X bashcompinit", ":")
        + f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
        + '_nbconductor; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completion_offers_commands_options_and_actions():
    assert {"list", "show", "schedules", "worker", "completion", "--json"} <= set(
        _complete("bash", "nbconductor ")
    )
    assert _complete("bash", "nbconductor sch") == ["schedules"]
    assert "--status" in _complete("bash", "nbconductor --db x.duckdb list --")
    assert "trigger" in _complete("bash", "nbconductor schedules ")
    assert "--cron" in _complete("bash", "nbconductor schedules create --")
    assert "--cron" not in _complete("bash", "nbconductor schedules delete --")


def test_completion_command_prints_scripts(cli):
    for shell in ("bash", "zsh"):
        result = cli("completion", shell)
        assert result.code == 0
        assert "complete -o default -F _nbconductor nbconductor" in result.out
    assert "bashcompinit" in cli("completion", "zsh").out
    assert cli("completion", "fish").code == 2


def test_completion_script_is_valid_bash():
    script = completion_script(build_parser(), "bash")
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    with pytest.raises(ValueError, match="choose one of bash, zsh"):
        completion_script(build_parser(), "fish")


def test_console_script_short_version():
    out = subprocess.run(
        [sys.executable, "-m", "nbconductor.cli", "-V"], capture_output=True, text=True
    )
    assert out.stdout.strip() == f"nbconductor {__version__}"
