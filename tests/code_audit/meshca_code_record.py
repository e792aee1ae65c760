"""Record every coded message meshca constructs, for the code audit (tests/code_audit_plugin.py).

Installed in the pytest processes by the plugin and, through ``sitecustomize`` on PYTHONPATH,
in every Python subprocess the tests start (``python -m meshca ...``). Each process appends
``{"test": NODEID, "code": MCA####}`` lines to its own file under $MESHCA_CODE_RECORD_DIR;
the test id comes from the plugin (in-process) or $MESHCA_CODE_RECORD_TEST (subprocesses).
Patching happens when ``meshca.errors`` is imported, never before: a process that does not
use meshca pays nothing.
"""

from __future__ import annotations

import json
import os
import sys

ENV_DIR = "MESHCA_CODE_RECORD_DIR"
ENV_TEST = "MESHCA_CODE_RECORD_TEST"

_state = {"test": None, "seen": set(), "fd": None}


def current_test() -> str:
    return _state["test"] or os.environ.get(ENV_TEST) or "(outside a test)"


def set_test(nodeid: str | None) -> None:
    _state["test"] = nodeid


def _write(code: str) -> None:
    directory = os.environ.get(ENV_DIR)
    if not directory:
        return
    key = (current_test(), code)
    if key in _state["seen"]:
        return
    _state["seen"].add(key)
    line = json.dumps({"test": key[0], "code": code}) + "\n"
    path = os.path.join(directory, f"codes-{os.getpid()}.jsonl")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def patch(module) -> None:
    """Wrap MeshcaError.__init__ of a loaded ``meshca.errors`` (idempotent)."""
    cls = module.MeshcaError
    if getattr(cls.__init__, "_meshca_recorded", False):
        return
    original = cls.__init__

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        try:
            _write(self.code)
        except OSError:
            pass  # the audit never breaks the code under test

    __init__._meshca_recorded = True
    cls.__init__ = __init__


class _Finder:
    """Patches ``meshca.errors`` right after it is executed (first import)."""

    def find_spec(self, name, path=None, target=None):
        if name != "meshca.errors":
            return None
        sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        original = spec.loader.exec_module

        def exec_module(module):
            original(module)
            patch(module)

        spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    if not os.environ.get(ENV_DIR):
        return
    module = sys.modules.get("meshca.errors")
    if module is not None:
        patch(module)
    elif not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
