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
are the program's own: a file, outside the interpreter's standard library and any installed
package (``sysconfig`` paths, ``site-packages``, ``dist-packages``); it stops at the first other
frame (runpy, asyncio, the SDK, the Automation API). Where the project sits does not matter.
Nothing the engine diffs changes (a stack trace is not an input), so a stack in flight runs no
step because of it. Installed only if the SDK still has the function this was written against.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

from pulumi.runtime import resource as _resource

_SDK_GET_STACK_TRACE = getattr(_resource, "_get_stack_trace", None)
_PACKAGE_DIRS = ("/site-packages/", "/dist-packages/")


def library_prefixes() -> tuple[str, ...]:
    """``file://`` URI prefixes of the interpreter's standard library and installed packages."""
    paths = sysconfig.get_paths()
    dirs = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if paths.get(k)}
    return tuple(sorted(Path(d).resolve().as_uri().rstrip("/") + "/" for d in dirs))


def _own(uri: str, excluded: tuple[str, ...]) -> bool:
    """A frame of the program itself (``_get_source_position_for_frame`` gives file URIs)."""
    return uri.startswith("file:") and not uri.startswith(excluded) and not any(d in uri for d in _PACKAGE_DIRS)


def trim(stack, excluded: tuple[str, ...]):
    """``stack`` (a ``source_pb2.StackTrace``) cut after its first frame and the program's frames after it."""
    frames = stack.frames
    keep = 1
    while keep < len(frames) and frames[keep].HasField("pc") and _own(frames[keep].pc.uri, excluded):
        keep += 1
    del frames[keep:]
    return stack


def trimmed(get_stack_trace=None, excluded: tuple[str, ...] | None = None):
    """The SDK's ``_get_stack_trace`` (or ``get_stack_trace``) with its result trimmed."""
    sdk = get_stack_trace or _SDK_GET_STACK_TRACE
    prefixes = library_prefixes() if excluded is None else excluded

    def _get_stack_trace():
        return trim(sdk(), prefixes)

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
