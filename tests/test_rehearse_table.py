"""The rehearsal's table reads at 80 columns, and its colours say what they mean (issue 12).

Rendered as an operator sees it: ``meshca rehearse`` with COLUMNS=80 (rich takes the width from
COLUMNS when stdout is not a terminal); no printed line may be wider. Colour comes only from
meaning, never from rich's automatic highlighting (which paints numbers, paths and quoted
words): red is an error or a failure, yellow a warning, green ok; nothing else is coloured."""

from __future__ import annotations

import json
import re

import pytest

from meshca import cli

from harness import ROOT

TWO = ["--clusters", "2", "--namespaces", "2", "--workloads", "1"]
SGR = re.compile(r"\x1b\[([0-9;]*)m")
# ANSI foreground colours: 30-37, 90-97, and 38;5;N / 38;2;R;G;B; red 31, green 32, yellow 33
COLOUR_NAMES = {"31": "red", "32": "green", "33": "yellow"}


def run(capsys, monkeypatch, *argv, colour=False):
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.delenv("NO_COLOR", raising=False)
    if colour:
        monkeypatch.setenv("FORCE_COLOR", "1")
        monkeypatch.setenv("TERM", "xterm")
    else:
        monkeypatch.delenv("FORCE_COLOR", raising=False)
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _wide(text: str) -> list[str]:
    return [line for line in SGR.sub("", text).splitlines() if len(line) > 80]


@pytest.mark.parametrize(
    "argv",
    [
        ["--stack", "dev", "--project-dir", str(ROOT)],  # one cluster: its long step ids and events
        ["--stack", "staging", "--project-dir", str(ROOT), "--scenario", "big-bang"],  # two clusters, failures
        ["--scenario", "early-secret-delete", *TWO],  # the gates-blind explanation
    ],
    ids=["dev", "staging-big-bang", "gates-blind"],
)
def test_the_table_fits_80_columns(capsys, monkeypatch, argv):
    rc, out, err = run(capsys, monkeypatch, "rehearse", "--quiet", *argv)
    assert "meshca rehearse: stack" in out and rc in (0, 1), err
    assert _wide(out) == []


def test_every_step_is_a_row_and_readable_at_80(capsys, monkeypatch):
    argv = ["rehearse", "--quiet", "--stack", "dev", "--project-dir", str(ROOT)]
    _, out, _ = run(capsys, monkeypatch, *argv, "--json")
    steps = json.loads(out)["steps"]
    rc, out, _ = run(capsys, monkeypatch, *argv)
    assert rc == 0
    rows = [line for line in out.splitlines() if re.match(r"^\s*\d+\s{2,}\S", line)]
    assert len(rows) == len(steps)
    for row, step in zip(rows, steps):
        number, name = row.split()[:2]
        assert int(number) == step["index"]
        # one cluster: no cluster column; the step id is whole on its row unless it is itself wider
        # than the column, then it continues on the next line
        assert step["step"].startswith(name) and (name == step["step"] or len(name) >= 40), (row, step["step"])


def test_the_report_to_stdout_sends_the_table_to_stderr_at_80(capsys, monkeypatch):
    rc, out, err = run(capsys, monkeypatch, "rehearse", *TWO, "--report", "-")
    assert rc == 0 and out.startswith("<!DOCTYPE html>")
    lines = err[: err.index("assumptions: ")].splitlines()
    table = lines[next(i for i, line in enumerate(lines) if "meshca rehearse: stack builtin" in line) :]
    assert len(table) > 20 and _wide("\n".join(table)) == []


def _colours(text: str) -> list[tuple[str, str]]:
    """(colour, the text it paints) for every coloured run; any other colour fails the test."""
    out, colour, pos = [], None, 0
    for m in SGR.finditer(text):
        if colour and m.start() > pos:
            out.append((colour, text[pos : m.start()]))
        params = (m.group(1) or "0").split(";")
        i = 0
        while i < len(params):
            p = params[i]
            if p in ("0", "", "39"):
                colour = None
            elif p in COLOUR_NAMES:
                colour = COLOUR_NAMES[p]
            elif p in ("38", "48") or (len(p) == 2 and p[0] in "349" and p != "39") or p.startswith("10"):
                raise AssertionError(f"a colour that means nothing here: SGR {m.group(1)} before {text[m.end():m.end() + 20]!r}")
            i += 1
        pos = m.end()
    return out


def test_colour_by_meaning_only(capsys, monkeypatch):
    rc, out, err = run(capsys, monkeypatch, "rehearse", "--quiet", "--scenario", "early-secret-delete", *TWO, colour=True)
    assert rc == 1 and "\x1b[" in out, "FORCE_COLOR gives a coloured table"
    painted = _colours(out)
    by = {c: {t.strip() for c2, t in painted if c2 == c and t.strip()} for c in ("red", "green", "yellow")}
    assert set(c for c, _ in painted) <= {"red", "green", "yellow"}
    assert by["green"] == {"pass"}, by  # gate verdicts that passed; the whole route failed, so no PASS
    assert "FAIL" in by["red"] and all(t == "FAIL" or t.isdigit() for t in by["red"]), by  # the verdict, failed-pair counts
    assert any(t.isdigit() and t != "0" for t in by["red"])
    assert by["yellow"] == {"why the gates passed:"}
    # no automatic highlighting: the counts of passing pairs, paths and the assumptions stay plain
    assert not [t for c, t in painted if "/" in t or "=" in t or "assumptions" in t]


def test_a_passing_route_is_green_and_nothing_is_red(capsys, monkeypatch):
    rc, out, _ = run(capsys, monkeypatch, "rehearse", "--quiet", *TWO, colour=True)
    assert rc == 0
    painted = _colours(out)
    assert ("green", "PASS") in painted
    assert [t for c, t in painted if c != "green"] == []
    assert {t.strip() for c, t in painted} == {"PASS", "pass"}
