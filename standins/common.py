"""What every stand-in shares: the invocation log, the state dir, the pinned versions.

- ``MESHCA_STANDIN_LOG``: if set, every invocation appends one JSON line
  ``{"tool", "argv", "start", "end", "exit", "cwd", "pid"}`` (tests prove "nothing ran" from it).
- ``MESHCA_STANDIN_STATE``: state dir (issued leaves, last bundles, the test Mesh CA, the
  revision registry the injector reads). Default: ``<dir of the kubeconfig>/.meshca-standins``
  (so every process given the same KUBECONFIG shares it), else ``~/.cache/meshca/standins``.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import sys

# asmcli 1.19.10-asm.9+config1: asmcli/asmcli.sh:37-41 (MAJOR=1 MINOR=19 POINT=10 REV=9 CONFIG_VER=1),
# printed by version_message, asmcli/commands/help.sh:38-44 as MAJOR.MINOR.POINT-asm.REV+configCONFIG_VER.
ASMCLI_VERSION = "1.19.10-asm.9+config1"
# The istioctl shipped with that asmcli release (RELEASE = MAJOR.MINOR.POINT-asm.REV, asmcli/lib/util.sh init()).
ISTIO_VERSION = "1.19.10-asm.9"


def utcnow() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def state_dir(kubeconfig: str | None = None) -> str:
    explicit = os.environ.get("MESHCA_STANDIN_STATE")
    if explicit:
        path = explicit
    else:
        kc = kubeconfig or (os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or None)
        if kc:
            path = os.path.join(os.path.dirname(os.path.abspath(kc)), ".meshca-standins")
        else:
            base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
            path = os.path.join(base, "meshca", "standins")
    os.makedirs(path, exist_ok=True)
    return path


def injector_registry_dir(url: str) -> str:
    """Where asmcli leaves a revision's injection values for the injector serving ``url``.

    Keyed by the injector's URL (the one thing both know: the injector starts before any
    kubeconfig exists); the injector empties it when it starts, so a reused port never serves
    another session's values."""
    import hashlib
    import tempfile

    key = hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"meshca-standin-injector-{key}")


class Invocation:
    """Context manager: records argv/time/exit code to ``$MESHCA_STANDIN_LOG``."""

    def __init__(self, tool: str, argv: list[str]):
        self.tool = tool
        self.argv = argv
        self.start = utcnow()

    def finish(self, code: int) -> None:
        path = os.environ.get("MESHCA_STANDIN_LOG")
        if not path:
            return
        rec = {
            "tool": self.tool,
            "argv": self.argv,
            "start": self.start,
            "end": utcnow(),
            "exit": code,
            "cwd": os.getcwd(),
            "pid": os.getpid(),
        }
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.write(json.dumps(rec) + "\n")


def run_logged(tool: str, main, argv: list[str]) -> None:
    inv = Invocation(tool, [tool, *argv])
    code = 1
    try:
        code = main(argv)
        code = 0 if code is None else int(code)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int) and exc.code is not None:
            print(exc.code, file=sys.stderr)
    except KeyboardInterrupt:
        code = 130
    finally:
        inv.finish(code)
    sys.stdout.flush()
    sys.exit(code)
