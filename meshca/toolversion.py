"""``meshca tool-version``: the pinned-version step of an install (A1/B1 ``verify-asmcli``).

Runs ``TOOL ARGS`` (``./asmcli --version``) and compares what it prints with the pinned
version, exactly: asmcli 1.19.10-asm.9+config1 prints ``MAJOR.MINOR.POINT-asm.REV+configN``
and a newline (anthos-service-mesh-packages asmcli/asmcli:774-780, ``version_message``), so
the comparison is the output without its trailing whitespace. Another version or a tool that
does not run is one coded line and exit 2, which fails the step and everything after it.
"""

from __future__ import annotations

import argparse
import subprocess

from .errors import MeshcaError, MeshcaErrors


def tool_version(argv: list[str], expected: str, key: str) -> str:
    shown = " ".join(argv)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise MeshcaErrors([MeshcaError("ToolNotRunnable", argv[0], tool=shown, reason=reason, path=argv[0])]) from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        raise MeshcaErrors(
            [MeshcaError("ToolNotRunnable", argv[0], tool=shown, reason=f"exit status {done.returncode}: {last}", path=argv[0])]
        )
    got = done.stdout.strip()
    if got != expected:
        raise MeshcaErrors([MeshcaError("ToolVersionMismatch", key, tool=shown, got=got[:80] or "nothing", expected=expected, key=key)])
    return got


def cmd_tool_version(args: argparse.Namespace) -> int:
    command = [a for a in args.command if a != "--"] if args.command[:1] == ["--"] else list(args.command)
    if not command:
        raise MeshcaErrors([MeshcaError("UsageError", "meshca tool-version", problem="no tool to run", usage="meshca tool-version --expect V [--key K] -- TOOL ARGS")])
    print(tool_version(command, args.expect, args.key))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("tool-version", help="run TOOL ARGS and require it to print exactly the pinned version (the verify-asmcli step)")
    p.add_argument("--expect", required=True, help="the exact version, e.g. 1.19.10-asm.9+config1")
    p.add_argument("--key", default="meshca:asmcliVersion", help="the config key that pins it (named in the error)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- TOOL ARGS")
    p.set_defaults(func=cmd_tool_version)
