"""components/stack_trace.py: the stack trace sent with each resource keeps the project's frames only.

The SDK's own ``_get_stack_trace`` runs here, called the way ``register_resource`` calls it (from
the third ``__init__`` of a resource class chain, pulumi/runtime/resource.py:758-766), from this
file (a file of the project) under pytest (site-packages frames below it).
"""

from __future__ import annotations

from pathlib import Path

from pulumi.runtime import resource as sdk_resource

from components import stack_trace

ROOT = Path(__file__).resolve().parents[1]
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


def test_trimmed_keeps_the_project_frames_then_stops():
    got = user_code(stack_trace.trimmed(project=ROOT))
    assert uris(got) == [HERE, HERE]  # user_code's call of Concrete, then the test's call of user_code
    assert got.frames[0].pc.line > 0


def test_the_first_frame_is_kept_even_outside_the_project(tmp_path):
    got = user_code(stack_trace.trimmed(project=tmp_path))
    assert uris(got) == [HERE]


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
