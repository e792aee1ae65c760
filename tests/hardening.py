"""Helpers of the hardening tests (bad inputs, faults, secrets): run meshca for real, prove
that nothing else ran, and read its one-line coded errors.

Two independent proofs that a refused input started nothing:
- in-process: ``meshca.cli.main`` under a Python audit hook that records every process
  creation event (``subprocess.Popen``, ``os.exec*``, ``os.posix_spawn``, ``os.system``,
  ``os.fork``...);
- a real ``python -m meshca`` subprocess with *tripwire* tools first on PATH (kubectl,
  istioctl, asmcli, gcloud, pulumi, helm, openssl): each one logs its argv and fails, so an
  empty log proves none was started.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

ROOT = Path(__file__).resolve().parents[1]
CODED = re.compile(r"^(?P<level>Error|Warning|Info) (?P<code>MCA\d{4}) (?P<subject>.+?): (?P<problem>.+); fix: (?P<fix>.*)$")
TRIPWIRE_TOOLS = ("kubectl", "istioctl", "asmcli", "gcloud", "pulumi", "helm", "openssl")

# ----------------------------------------------------------------------------- coded lines


@dataclass(frozen=True)
class Coded:
    code: str
    subject: str
    problem: str
    fix: str


def parse_coded(line: str) -> Coded:
    """One ``<Level> MCA#### <subject>: <problem>; fix: <fix>`` line (subjects may hold ': ')."""
    m = CODED.match(line)
    assert m, f"not a coded line: {line!r}"
    _level, code, rest = line.split(" ", 2)
    head, _, fix = rest.rpartition("; fix: ")
    # the subject is what precedes the first ': ' that the problem text does not contain
    subject, _, problem = head.partition(": ")
    return Coded(code, subject, problem, fix)


def subject_of(line: str, subject: str) -> Coded:
    """Parse ``line`` knowing the expected subject (subjects like 'meshca:rev2' hold ':')."""
    m = CODED.match(line)
    assert m, f"not a coded line: {line!r}"
    _level, code, rest = line.split(" ", 2)
    assert rest.startswith(f"{subject}: "), f"subject {subject!r} not named first in {line!r}"
    head, sep, fix = rest[len(subject) + 2 :].rpartition("; fix: ")
    assert sep, f"no '; fix: ' in {line!r}"
    return Coded(code, subject, head, fix)


# ----------------------------------------------------------------------------- audit hook

_PROCESS_EVENTS = ("subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.system", "os.fork", "os.forkpty", "pty.spawn")
_armed = threading.local()
_installed: list[bool] = []


def _hook(event: str, args) -> None:
    log = getattr(_armed, "log", None)
    if log is not None and event.startswith(_PROCESS_EVENTS):
        log.append((event, repr(args)[:200]))


@contextlib.contextmanager
def no_process_started():
    """Record every process-creation audit event of this thread while the block runs."""
    if not _installed:
        sys.addaudithook(_hook)  # hooks cannot be removed: one, armed per block
        _installed.append(True)
    events: list[tuple[str, str]] = []
    _armed.log = events
    try:
        yield events
    finally:
        _armed.log = None


def main_in_process(argv: list[str], cwd: Path | None = None) -> tuple[int, str, str, list]:
    """``meshca.cli.main(argv)`` with stdout/stderr captured and process creation audited."""
    from meshca import cli

    out, err = io.StringIO(), io.StringIO()
    old = Path.cwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with no_process_started() as events, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = cli.main(list(argv))
    finally:
        os.chdir(old)
    return rc, out.getvalue(), err.getvalue(), events


# ----------------------------------------------------------------------------- tripwires


def write_tripwires(directory: Path) -> tuple[Path, Path]:
    """Tools that log their argv to ``directory/tripwire.log`` and fail. Returns (bin, log)."""
    bin_dir = directory / "tripwire-bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    log = directory / "tripwire.log"
    for tool in TRIPWIRE_TOOLS:
        path = bin_dir / tool
        path.write_text(
            "#!/bin/sh\n"
            f'printf "%s\\n" "{tool} $*" >> "{log}"\n'
            f'echo "tripwire: {tool} must not run for a refused input" >&2\n'
            "exit 97\n"
        )
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return bin_dir, log


def run_meshca(argv: list[str], *, tripwire: tuple[Path, Path], cwd: Path | None = None, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    """A real ``python -m meshca`` process with the tripwires first on PATH."""
    bin_dir, _ = tripwire
    env = {**os.environ, **(extra_env or {})}
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    env.pop("MESHCA_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "meshca", *argv], capture_output=True, text=True, cwd=cwd or ROOT, env=env, timeout=120)


def tripwire_calls(tripwire: tuple[Path, Path]) -> list[str]:
    log = tripwire[1]
    return log.read_text().splitlines() if log.exists() else []


# ----------------------------------------------------------------------------- stacks


def project_copy(directory: Path) -> Path:
    """A project directory: Pulumi.yaml, the sample certs and the overlays, to break on purpose."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "Pulumi.yaml", directory / "Pulumi.yaml")
    shutil.copytree(ROOT / "samples", directory / "samples", dirs_exist_ok=True)
    shutil.copytree(ROOT / "overlays", directory / "overlays", dirs_exist_ok=True)
    return directory


def stack_copy(directory: Path, stack: str = "dev", mutate: Callable[[dict], None] | None = None, *, name: str | None = None) -> Path:
    """``Pulumi.<name>.yaml`` in a project copy: a shipped stack's config, mutated."""
    project_copy(directory)
    doc = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    if mutate:
        mutate(doc["config"])
    path = directory / f"Pulumi.{name or stack}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
