"""Install the pulumi-resource-command STAND-IN (standins/command_provider.py) as plugin ``command`` 1.2.1.

    python3 standins/install_command_plugin.py [--pulumi-home DIR] [--pulumi BIN] [--python PY]

Defaults: PULUMI_HOME = ``toolchain/build.py --print-home``, pulumi = ``toolchain/build.py
--print-bin``/pulumi, python = this checkout's ``.venv/bin/python`` (needs grpcio + the pulumi SDK).
``pulumi plugin install --file`` copies the file it is given into the plugin dir, so this writes a
launcher with the absolute paths of the python and of command_provider.py baked in, into a temp dir,
and installs that (``--reinstall``: a second run replaces the first). Prints the plugin dir.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
NAME, VERSION = "command", "1.2.1"


def _toolchain(flag: str) -> Path:
    out = subprocess.run([sys.executable, str(REPO / "toolchain" / "build.py"), flag],
                         check=True, capture_output=True, text=True).stdout.strip()
    return Path(out)


def launcher_text(python: str) -> str:
    return ("#!/bin/sh\n"
            "# STAND-IN of pulumi-resource-command v1.2.1 (contract only): " + str(HERE / "command_provider.py") + "\n"
            f"exec {shlex.quote(python)} -P {shlex.quote(str(HERE / 'command_provider.py'))} \"$@\"\n")


def install(pulumi_home: Path, pulumi: Path, python: str) -> Path:
    if not os.access(python, os.X_OK):
        raise SystemExit(f"{python}: no such python (create the checkout's .venv, or pass --python)")
    if not os.access(pulumi, os.X_OK):
        raise SystemExit(f"{pulumi}: no pulumi CLI (run `make toolchain`, or pass --pulumi)")
    pulumi_home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PULUMI_HOME": str(pulumi_home), "PULUMI_SKIP_UPDATE_CHECK": "true",
           "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true"}
    with tempfile.TemporaryDirectory(prefix="command-standin-") as tmp:
        exe = Path(tmp) / f"pulumi-resource-{NAME}"
        exe.write_text(launcher_text(python))
        exe.chmod(0o755)
        p = subprocess.run([str(pulumi), "plugin", "install", "resource", NAME, VERSION, "--file", str(exe), "--reinstall"],
                           env=env, capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"pulumi plugin install exited {p.returncode}:\n{p.stdout}{p.stderr}")
    return pulumi_home / "plugins" / f"resource-{NAME}-v{VERSION}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="install_command_plugin.py")
    ap.add_argument("--pulumi-home", type=Path)
    ap.add_argument("--pulumi", type=Path)
    ap.add_argument("--python", default=str(REPO / ".venv" / "bin" / "python"))
    args = ap.parse_args(argv)
    home = args.pulumi_home or Path(os.environ.get("MESHCA_TOOLCHAIN_PULUMI_HOME") or _toolchain("--print-home"))
    pulumi = args.pulumi or Path(os.environ.get("MESHCA_TOOLCHAIN_BIN") or _toolchain("--print-bin")) / "pulumi"
    print(install(home, pulumi, args.python))
    return 0


if __name__ == "__main__":
    sys.exit(main())
