"""Stack traces the engine keeps for each resource, cut to this project's own frames (issue 11/13).

The Python SDK sends the engine a stack trace with every resource it registers
(pulumi/runtime/resource.py ``_get_stack_trace``, pulumi 3.272.0 lines 741-778: every frame from
the resource's constructor call down to the interpreter's first, via ``traceback.extract_stack``),
and the engine stores it in the resource's state (``stackTrace``; pulumi v3.274.1
pkg/resource/deploy/source_eval.go ``newStackTrace`` :2208, the state's ``StackTrace``). Below
this project's ``__main__.py`` those frames are the Automation API's server, asyncio's loop or
the language host, the same for every resource: in a 3 x 300 move (3,640 resources) they were
about half of a 15 MB state file, and the file backend serializes, hashes and writes the whole
state after every step of an ``up`` (pkg/backend/snapshot.go ``saveSnapshot`` :911, diy
``saveCheckpoint``): 81% of the CLI's CPU in a 1 x 300 move (BENCHMARKS.md "The route at scale").

``install()`` wraps the SDK's function so the trace keeps its first frame (the source position
the engine shows for the resource, ``_get_source_position``) and the frames after it while they
are files of this project outside any ``site-packages``; it stops at the first other frame.
Nothing the engine diffs changes (a stack trace is not an input), so a stack in flight runs no
step because of it. Installed only if the SDK still has the function this was written against.
"""

from __future__ import annotations

from pathlib import Path

from pulumi.runtime import resource as _resource

PROJECT = Path(__file__).resolve().parents[1]
_SDK_GET_STACK_TRACE = getattr(_resource, "_get_stack_trace", None)


def _own(uri: str, root: str) -> bool:
    """A ``file://`` URI of a file of the project (``_get_source_position_for_frame`` makes them)."""
    return uri.startswith(root) and "/site-packages/" not in uri and "/dist-packages/" not in uri


def trim(stack, root: str):
    """``stack`` (a ``source_pb2.StackTrace``) cut after its first frame and the project frames after it."""
    frames = stack.frames
    keep = 1
    while keep < len(frames) and frames[keep].HasField("pc") and _own(frames[keep].pc.uri, root):
        keep += 1
    del frames[keep:]
    return stack


def trimmed(get_stack_trace=None, project: Path = PROJECT):
    """The SDK's ``_get_stack_trace`` (or ``get_stack_trace``) with its result trimmed."""
    sdk = get_stack_trace or _SDK_GET_STACK_TRACE
    root = project.as_uri().rstrip("/") + "/"

    def _get_stack_trace():
        return trim(sdk(), root)

    _get_stack_trace.meshca_trimmed = True  # type: ignore[attr-defined]
    return _get_stack_trace


def install() -> bool:
    """Trim every resource's stack trace from now on; False (and nothing done) on an SDK of another shape."""
    current = getattr(_resource, "_get_stack_trace", None)
    if getattr(current, "meshca_trimmed", False):
        return True
    if current is None or current is not _SDK_GET_STACK_TRACE or not callable(current):
        return False
    _resource._get_stack_trace = trimmed(current)
    return True
