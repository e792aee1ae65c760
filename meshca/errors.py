"""Coded messages: the catalogue (messages.yaml) and the exceptions that carry its codes.

Every problem meshca reports is one line,
``<Level> MCA#### <key or file>: <problem>; fix: <action>`` with the level (``Error``,
``Warning`` or ``Info``) from the catalogue, as ``istioctl analyze`` prints its messages.
Code in meshca raises ``MeshcaError("MessageName", subject, **args)``; validation collects
several into ``MeshcaErrors`` so the operator sees every problem of a file at once.
"""

from __future__ import annotations

import functools
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import yaml


LEVELS = ("Error", "Warning", "Info")
"""The levels a message may have, as ``istioctl analyze`` names them."""


@dataclass(frozen=True)
class Message:
    name: str
    code: str
    level: str
    description: str
    template: str
    fix: str
    retired: bool = False


@functools.cache
def catalogue() -> Mapping[str, Message]:
    """Every message, by name, from messages.yaml (validated: unique names and codes)."""
    text = (Path(__file__).parent / "messages.yaml").read_text(encoding="utf-8")
    # libyaml's safe loader when PyYAML has it (same documents, a tenth of the CPU: every failing
    # check line builds a message, so the gates' checks load this catalogue)
    entries = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))["messages"]
    by_name: dict[str, Message] = {}
    codes: set[str] = set()
    for entry in entries:
        message = Message(
            name=entry["name"],
            code=entry["code"],
            level=entry["level"],
            description=entry["description"],
            template=entry["template"],
            fix=entry["fix"],
            retired=bool(entry.get("retired", False)),
        )
        if message.level not in LEVELS:
            raise RuntimeError(f"messages.yaml: {message.name} has level {message.level!r}, not one of {LEVELS}")
        if message.name in by_name or message.code in codes:
            raise RuntimeError(f"messages.yaml: duplicate {message.name} / {message.code}")
        by_name[message.name] = message
        codes.add(message.code)
    return by_name


def by_code(code: str) -> Message:
    for message in catalogue().values():
        if message.code == code:
            return message
    raise KeyError(code)


LINE = re.compile(r"^(?P<level>Error|Warning|Info) (?P<code>MCA\d{4}) (?P<rest>.*)$", re.S)
"""A printed coded line: its level, its code, then ``<subject>: <problem>; fix: <fix>``."""


def split_line(line: str) -> tuple[str, str, str] | None:
    """``(level, code, rest)`` of a coded line, or None when ``line`` is not one."""
    m = LINE.match(line)
    return (m["level"], m["code"], m["rest"]) if m else None


def _one_line(value: object) -> str:
    """Any whitespace run (newlines included) becomes one space: a message is one line."""
    return re.sub(r"\s+", " ", str(value))


class MeshcaError(Exception):
    """One coded problem with the key or file at fault and what to do."""

    def __init__(self, name: str, subject: str, /, **args: object) -> None:
        message = catalogue()[name]
        if message.retired:
            raise RuntimeError(f"{name} ({message.code}) is retired")
        clean = {k: _one_line(v) for k, v in args.items()}
        self.message = message
        self.name = name
        self.code = message.code
        self.level = message.level
        self.subject = _one_line(subject)
        self.args_ = clean
        self.problem = message.template.format(**clean)
        self.fix = message.fix.format(**clean)
        super().__init__(self.line())

    def line(self) -> str:
        return f"{self.level} {self.code} {self.subject}: {self.problem}; fix: {self.fix}"

    def as_dict(self) -> dict[str, str]:
        return {
            "code": self.code,
            "level": self.level,
            "name": self.name,
            "subject": self.subject,
            "problem": self.problem,
            "fix": self.fix,
        }


class MeshcaErrors(Exception):
    """Several coded problems found together (e.g. every error of one stack file)."""

    def __init__(self, errors: Iterable[MeshcaError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(e.line() for e in self.errors))

    def lines(self) -> list[str]:
        return [e.line() for e in self.errors]


def warn(name: str, subject: str, /, **args: object) -> MeshcaError:
    """A coded warning (level Warning/Info in the catalogue), returned, not raised."""
    return MeshcaError(name, subject, **args)


def print_errors(errors: Iterable[MeshcaError], stream=None) -> None:
    stream = stream or sys.stderr
    for error in errors:
        print(error.line(), file=stream)
