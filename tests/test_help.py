"""Every command and option has help with a description and examples, and shell completion is
generated from the same parser tree (issue 12)."""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess

import pytest

from meshca import cli
from meshca.help import walk

from harness import ROOT

PARSER = cli.build_parser()
COMMANDS = [(" ".join(path), parser) for path, parser in walk(PARSER)]


@pytest.mark.parametrize("name,parser", COMMANDS, ids=[n or "meshca" for n, _ in COMMANDS])
def test_every_command_has_a_description_examples_and_option_help(name, parser):
    assert parser.description and parser.description.strip(), name
    assert parser.formatter_class is argparse.RawDescriptionHelpFormatter, name
    assert parser.epilog and parser.epilog.startswith("examples:\n"), name
    examples = [line.strip() for line in parser.epilog.splitlines()[1:] if line.strip()]
    assert any(line.startswith(f"meshca {name}".rstrip()) for line in examples), (name, examples)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        assert action.help and action.help.strip(), (name, action.option_strings or action.dest)
    text = parser.format_help()
    assert "\nexamples:\n  " in text


def _example_commands():
    for name, parser in COMMANDS:
        for line in parser.epilog.splitlines()[1:]:
            line = line.strip()
            if line.startswith("meshca ") and "<(" not in line:
                yield name, line


@pytest.mark.parametrize("name,line", list(_example_commands()))
def test_every_example_parses(name, line):
    argv = shlex.split(line.split(" > ")[0])[1:]
    args = cli.build_parser().parse_args(argv)  # a usage error raises MeshcaErrors
    assert callable(args.func)


def test_help_is_printed_not_coded(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args(["gateway", "ready", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "Wait until the Service's EndpointSlices" in out and "examples:" in out and "--poll POLL" in out


def _complete(script: str, words: list[str], cwd=ROOT) -> list[str]:
    cword = len(words) - 1
    bash = (
        f"{script}\nCOMP_WORDS=({' '.join(shlex.quote(w) for w in words)}); COMP_CWORD={cword}; _meshca; "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    proc = subprocess.run(["bash", "-c", bash], capture_output=True, text=True, cwd=cwd, check=True)
    return proc.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completion_follows_the_parser(capsys):
    assert cli.main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    assert "gateway" in _complete(script, ["meshca", "ga"])
    assert _complete(script, ["meshca", "gateway", ""]) == ["clone", "ready", "-h", "--help"]
    assert "--context" in _complete(script, ["meshca", "gateway", "clone", "--con"])
    assert _complete(script, ["meshca", "check", "--source", ""]) == ["kube", "istioctl"]
    assert _complete(script, ["meshca", "check", ""])[:4] == ["root-cert", "workload-cert", "trust-domain", "root-of-trust"]
    assert sorted(_complete(script, ["meshca", "plan", "--stack", ""])) == ["csm116", "dev", "prod", "staging"]
    assert "Pulumi.dev.yaml" in _complete(script, ["meshca", "plan", "--config", "Pulumi.d"])
    assert _complete(script, ["meshca", "completion", ""])[:2] == ["bash", "zsh"]
    # advance/up --to is a position of the route (N, PHASE, PHASE:BATCH), not a stack: the phases.
    assert _complete(script, ["meshca", "up", "--to", "mesh"]) == ["mesh-ca", "mesh-ca-done"]
    assert _complete(script, ["meshca", "advance", "--to", "d"]) == ["distribute-root", "distribute-root-done"]
    assert sorted(_complete(script, ["meshca", "up", "--stack", ""])) == ["csm116", "dev", "prod", "staging"]
    assert _complete(script, ["meshca", "up", "--engine", ""]) == ["auto", "local", "inline"]
    assert sorted(_complete(script, ["meshca", "promote", "--to", ""])) == ["csm116", "dev", "prod", "staging"]


def test_zsh_completion_is_the_same_tree_through_bashcompinit(capsys):
    assert cli.main(["completion", "zsh"]) == 0
    script = capsys.readouterr().out
    assert script.startswith("#compdef meshca\n") and "bashcompinit" in script and "complete -o default -F _meshca meshca" in script
    if shutil.which("zsh"):
        subprocess.run(["zsh", "-n"], input=script, text=True, check=True)


def test_completion_of_an_unknown_shell_is_a_coded_usage_error(capsys):
    assert cli.main(["completion", "fish"]) == 2
    assert capsys.readouterr().err.startswith("Error MCA0901 meshca completion: argument shell: invalid choice: 'fish'")


@pytest.mark.parametrize("command", sorted(cli.LEAN_COMMANDS))
def test_a_lean_command_parses_and_helps_as_in_the_full_parser(command):
    # The lean parser (only that command's module) must be the full parser's, for what the
    # steps and the gates run: same help text, same parsed arguments.
    full = dict(walk(PARSER))[(command,)]
    lean = dict(walk(cli.build_parser(command)))[(command,)]
    assert lean.format_help() == full.format_help()
    for line in [ln.strip() for ln in full.epilog.splitlines()[1:] if ln.strip().startswith(f"meshca {command}")]:
        argv = shlex.split(line.split(" > ")[0])[1:]
        a, b = vars(cli.build_parser().parse_args(argv)), vars(cli.build_parser(command).parse_args(argv))
        assert {k: v for k, v in a.items() if k != "func"} == {k: v for k, v in b.items() if k != "func"}
        assert a["func"] is b["func"]
