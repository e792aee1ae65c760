"""A dynamic provider's failure as the one coded line the engine shows, never a traceback.

The Python dynamic provider host formats every exception a provider raises with
``traceback.format_exc()`` and sends that text as the gRPC error's details
(pulumi 3.272.0 ``pulumi/dynamic/__main__.py`` lines 81-86, ``_abort_with_traceback``); the engine
prints the details as the resource's error, first line in the progress view. So a gate that did
not pass showed ``error: Traceback (most recent call last):`` and twenty lines of frames before
the coded line.

``one_line`` re-raises a failure so that the same ``traceback.format_exc()`` yields exactly
``<Level> MCA#### <subject>: <problem>; fix: <fix>`` (then the context, e.g. which gate, on the
next line):
- ``sys.tracebacklimit = 0``: no frame and no ``Traceback (most recent call last):`` header
  (CPython 3.11 ``traceback.py``: ``StackSummary._extract_from_extended_frame_gen`` reads
  ``sys.tracebacklimit`` when no limit is given; ``TracebackException.format`` writes the header
  only when the stack is not empty);
- the last line is ``<type>: <str>`` with the type's module left out for ``builtins``
  (``TracebackException.format_exception_only``): the re-raised exception's type is named after
  the coded line's part before its first ``": "`` and its str is the rest.

Only in the dynamic provider host (``python -m pulumi.dynamic``; tests and the program keep the
original exception), and not with ``MESHCA_DEBUG=1`` (the traceback is what debugging needs).
"""

from __future__ import annotations

import functools
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable

CODED = re.compile(r"(?:Error|Warning|Info) MCA\d{4} [^\n]*?: [^\n]*")


def in_dynamic_provider_host() -> bool:
    """True in the process the engine starts for ``pulumi-python:dynamic`` resources."""
    parts = Path(sys.argv[0] if sys.argv else "").parts
    return tuple(parts[-3:]) == ("pulumi", "dynamic", "__main__.py")


def one_line_exception(exc: BaseException) -> BaseException:
    """An exception whose ``traceback.format_exception_only`` is the coded line (+ context lines)."""
    message = str(exc)
    m = CODED.search(message)
    if m:
        head = m.group(0)
        context = (message[: m.start()] + message[m.end():]).strip(" :.\n")
        subject, _, rest = head.partition(": ")
        text = rest + (f"\n  ({context})" if context else "")
    else:  # no coded line: keep the message, name the type plainly
        subject, text = type(exc).__name__, message
    cls = type(subject, (RuntimeError,), {"__module__": "builtins", "__qualname__": subject})
    return cls(text)


def one_line(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a provider method: in the dynamic provider host, a failure is shown as its coded line."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not in_dynamic_provider_host() or os.environ.get("MESHCA_DEBUG") == "1":
                raise
            sys.tracebacklimit = 0
            raise one_line_exception(exc) from None

    return wrapper
