"""components/stack_trace.py: the stack trace sent with each resource keeps the project's frames only.

The SDK's own ``_get_stack_trace`` runs here, called the way ``register_resource`` calls it (from
the third ``__init__`` of a resource class chain, pulumi/runtime/resource.py:758-766), from this
file (a file of the project) under pytest (site-packages frames below it).
"""

from __future__ import annotations

import os
from pathlib import Path

from pulumi.runtime import resource as sdk_resource

from components import stack_trace

HERE = Path(__file__).resolve().as_uri()


class Base:
    def __init__(self, get):
        self.trace = get()


class Middle(Base):
    def __init__(self, get):
        super().__init__(get)


class Concrete(Middle):
    def __init__(self, get):
        super().__init__(get)


def user_code(get):
    return Concrete(get).trace


def uris(trace) -> list[str]:
    return [f.pc.uri if f.HasField("pc") else "" for f in trace.frames]


def test_the_sdk_trace_reaches_below_the_project():
    # The counterfactual: untrimmed, the trace goes on into pytest and pluggy (site-packages).
    full = uris(user_code(stack_trace._SDK_GET_STACK_TRACE))
    assert full[0] == HERE and full[1] == HERE
    assert any("/site-packages/" in u for u in full)


def test_trimmed_keeps_the_program_frames_then_stops():
    got = user_code(stack_trace.trimmed())
    assert uris(got) == [HERE, HERE]  # user_code's call of Concrete, then the test's call of user_code
    assert got.frames[0].pc.line > 0


def test_the_first_frame_is_kept_even_if_it_is_not_the_programs():
    got = user_code(stack_trace.trimmed(excluded=(Path(__file__).resolve().parent.as_uri() + "/",)))
    assert uris(got) == [HERE]


def test_the_interpreters_libraries_are_not_the_program():
    prefixes = stack_trace.library_prefixes()
    assert any(p.endswith("/site-packages/") for p in prefixes)
    assert Path(os.__file__).resolve().as_uri().startswith(prefixes)  # the standard library
    assert not HERE.startswith(prefixes)


def test_install_wraps_the_sdk_once(monkeypatch):
    monkeypatch.setattr(sdk_resource, "_get_stack_trace", stack_trace._SDK_GET_STACK_TRACE)
    assert stack_trace.install() is True
    wrapped = sdk_resource._get_stack_trace
    assert wrapped is not stack_trace._SDK_GET_STACK_TRACE and wrapped.meshca_trimmed
    assert stack_trace.install() is True and sdk_resource._get_stack_trace is wrapped


def test_install_refuses_an_sdk_of_another_shape(monkeypatch):
    other = lambda: None  # noqa: E731
    monkeypatch.setattr(sdk_resource, "_get_stack_trace", other)
    assert stack_trace.install() is False
    assert sdk_resource._get_stack_trace is other
