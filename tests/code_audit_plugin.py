"""The code audit: after a full test run, every live code of meshca/messages.yaml must have
been EXERCISED, or the run fails.

A code is exercised when some test both
1. made meshca construct that coded message while it ran (in the pytest process, or in a Python
   subprocess it started: ``tests/code_audit/sitecustomize.py`` records those), and
2. names the code in its own module's source or its parameters (``MCA####`` or the message
   name), i.e. the test is about that code, not merely passing by it.

Records go to one file per process under a directory the controller creates and hands to the
xdist workers; the controller judges in ``pytest_sessionfinish``. The judgement runs only on a
complete run (every tests/test_*.py collected, nothing deselected, no -k/-m/--lf); set
MESHCA_CODE_AUDIT=0 to skip it. ``judge`` is pure and unit-tested (tests/test_code_audit.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import pytest

HERE = Path(__file__).resolve().parent
RECORDER_DIR = HERE / "code_audit"
if str(RECORDER_DIR) not in sys.path:
    sys.path.insert(0, str(RECORDER_DIR))

import meshca_code_record as recorder  # noqa: E402

CODE = re.compile(r"\bMCA\d{4}\b")
_KEY = pytest.StashKey[dict]()


# ----------------------------------------------------------------------------- pure judgement


@dataclass(frozen=True)
class Verdict:
    live: frozenset[str]
    exercised: frozenset[str]
    constructed_only: frozenset[str]  # constructed, but by no test that names them

    @property
    def missing(self) -> list[str]:
        return sorted(self.live - self.exercised)


def named_codes(text: str, names: Mapping[str, str]) -> set[str]:
    """Codes a source text names: ``MCA####`` literally or a message name as a whole word."""
    found = set(CODE.findall(text))
    for name, code in names.items():
        if name in text and re.search(rf"\b{re.escape(name)}\b", text):
            found.add(code)
    return found


def judge(live: Iterable[str], constructed: Mapping[str, set[str]], named: Mapping[str, set[str]]) -> Verdict:
    """``constructed``: test -> codes made while it ran; ``named``: test -> codes it names."""
    live = frozenset(live)
    exercised = {code for test, codes in constructed.items() for code in codes & named.get(test, set())}
    anywhere = {code for codes in constructed.values() for code in codes}
    return Verdict(live, frozenset(exercised & live), frozenset((anywhere - exercised) & live))


def live_codes() -> dict[str, str]:
    from meshca.errors import catalogue

    return {m.name: m.code for m in catalogue().values() if not m.retired}


# ----------------------------------------------------------------------------- plugin


def _enabled() -> bool:
    return os.environ.get("MESHCA_CODE_AUDIT", "1") != "0"


def pytest_configure(config: pytest.Config) -> None:
    if not _enabled():
        return
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "meshca_code_record" in workerinput:
        directory = workerinput["meshca_code_record"]
        owner = False
    else:
        directory = tempfile.mkdtemp(prefix="meshca-code-audit-")
        owner = True
    config.stash[_KEY] = {"dir": directory, "owner": owner, "verdict": None, "skipped": None}
    os.environ[recorder.ENV_DIR] = directory
    paths = [str(RECORDER_DIR)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    recorder.install()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:  # xdist: hand the directory to each worker
    state = node.config.stash.get(_KEY, None)
    if state is not None:
        node.workerinput["meshca_code_record"] = state["dir"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    recorder.set_test(item.nodeid)
    os.environ[recorder.ENV_TEST] = item.nodeid
    try:
        yield
    finally:
        recorder.set_test(None)
        os.environ.pop(recorder.ENV_TEST, None)


def pytest_deselected(items) -> None:
    config = items[0].config if items else None
    if config is not None and _KEY in config.stash:
        config.stash[_KEY]["deselected"] = config.stash[_KEY].get("deselected", 0) + len(items)


def pytest_runtest_logreport(report) -> None:
    """The controller (or the only process) notes every test that finished."""
    if report.when == "teardown":
        _finished.add(report.nodeid)


_finished: set[str] = set()


def pytest_collection_finish(session: pytest.Session) -> None:
    state = session.config.stash.get(_KEY, None)
    if state is None:
        return
    names = live_codes()
    texts: dict[Path, set[str]] = {}
    named: dict[str, list[str]] = {}
    files = set()
    for item in session.items:
        path = Path(str(item.path))
        files.add(path.name)
        if path not in texts:
            texts[path] = named_codes(path.read_text(encoding="utf-8"), names)
        codes = set(texts[path])
        callspec = getattr(item, "callspec", None)
        if callspec is not None:
            codes |= named_codes(repr(callspec.params), names)
        named[item.nodeid] = sorted(codes)
    doc = {"named": named, "files": sorted(files), "deselected": state.get("deselected", 0)}
    Path(state["dir"], f"collected-{os.getpid()}.json").write_text(json.dumps(doc))


def _complete_run(config: pytest.Config, collected: list[dict]) -> str | None:
    """Why this run cannot be judged (None: it can)."""
    opt = config.option
    if getattr(opt, "keyword", "") or getattr(opt, "markexpr", "") or getattr(opt, "deselect", None) or getattr(opt, "lf", False) or getattr(opt, "failedfirst", False):
        return "a selection (-k, -m, --deselect, --lf) ran"
    if not collected:
        return "no collection record"
    every = {p.name for p in HERE.glob("test_*.py")}
    seen = set().union(*(set(c["files"]) for c in collected))
    if every - seen:
        return f"{len(every - seen)} test file(s) not collected"
    if any(c["deselected"] for c in collected):
        return "tests were deselected"
    unfinished = set().union(*(set(c["named"]) for c in collected)) - _finished
    if unfinished:
        return f"{len(unfinished)} test(s) did not run to the end (interrupted or -x)"
    return None


def pytest_sessionfinish(session: pytest.Session, exitstatus) -> None:
    state = session.config.stash.get(_KEY, None)
    if state is None or not state["owner"]:
        return
    directory = Path(state["dir"])
    try:
        collected = [json.loads(p.read_text()) for p in directory.glob("collected-*.json")]
        why_not = _complete_run(session.config, collected)
        if why_not:
            state["skipped"] = why_not
            return
        named: dict[str, set[str]] = {}
        for c in collected:
            for test, codes in c["named"].items():
                named.setdefault(test, set()).update(codes)
        constructed: dict[str, set[str]] = {}
        for path in directory.glob("codes-*.jsonl"):
            for line in path.read_text().splitlines():
                if line.strip():
                    entry = json.loads(line)
                    constructed.setdefault(entry["test"], set()).add(entry["code"])
        verdict = judge(live_codes().values(), constructed, named)
        state["verdict"] = verdict
        if verdict.missing and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    state = config.stash.get(_KEY, None)
    if state is None or not state["owner"]:
        return
    verdict = state["verdict"]
    if verdict is None:
        if state["skipped"]:
            terminalreporter.write_line(f"meshca code audit: not judged ({state['skipped']})")
        return
    if verdict.missing:
        terminalreporter.section("meshca code audit", sep="=", red=True, bold=True)
        from meshca.errors import by_code

        for code in verdict.missing:
            how = "constructed, but by no test that names it" if code in verdict.constructed_only else "never constructed"
            terminalreporter.write_line(f"FAILED {code} {by_code(code).name}: {how}")
        terminalreporter.write_line(f"{len(verdict.missing)} of {len(verdict.live)} live codes not exercised")
    else:
        terminalreporter.write_line(f"meshca code audit: all {len(verdict.live)} live codes exercised")
