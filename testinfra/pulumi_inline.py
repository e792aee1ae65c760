"""Run the project's program under the REAL Pulumi CLI without ``pulumi-language-python``.

TEST INFRASTRUCTURE, used by the e2e smoke only when the toolchain has no Python language host
(toolchain/README.md: the Go module proxy refuses ``.../sdk/python/cmd/pulumi-language-python/v3``).
The Automation API's inline-program mode makes the Python SDK serve the language-runtime gRPC
itself and start the real ``pulumi`` CLI with ``--client=127.0.0.1:PORT``; the engine, the
providers, the state, the policy packs are the CLI's as in ``pulumi preview``/``pulumi up``. The
program is this directory's ``__main__.py`` (``components.program.run()``), run in this process
with the working directory the CLI would give it, the project's Pulumi.yaml and the stack's
Pulumi.<stack>.yaml. ``--policy-pack DIR`` is handed to the CLI as the executable analyzer plugin
testinfra/bin/meshca-policy-pack running DIR (a pack directory needs the language host).

    cd PROJECT && python -m testinfra.pulumi_inline --stack dev init
    cd PROJECT && python -m testinfra.pulumi_inline --stack dev preview [--policy-pack policy]
    cd PROJECT && python -m testinfra.pulumi_inline --stack dev up [--policy-pack policy] [--skip-preview] [--replace URN]...
    cd PROJECT && python -m testinfra.pulumi_inline --stack dev destroy

``up`` is always ``pulumi up --yes --skip-preview`` here: the Automation API passes both flags
(pulumi/automation/_stack.py ``Stack.up``: ``args = ["up", "--yes", "--skip-preview"]``), so
``--skip-preview`` is accepted and changes nothing. ``destroy`` is ``pulumi destroy --yes
--skip-preview`` (``Stack.destroy``); it does not run the program.

The CLI is ``pulumi`` from PATH; PULUMI_HOME, PULUMI_BACKEND_URL, the passphrase and the rest come
from the environment. Output streams to stdout; exit 1 when the command fails.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m testinfra.pulumi_inline")
    ap.add_argument("--stack", required=True)
    ap.add_argument("command", choices=("init", "preview", "up", "destroy"))
    ap.add_argument("--policy-pack", action="append", default=[])
    ap.add_argument("--skip-preview", action="store_true", help="accepted: the Automation API's up always skips the preview")
    ap.add_argument("--replace", action="append", default=[], help="URN to replace (pulumi up --replace URN); repeatable")
    args = ap.parse_args(argv)

    from pulumi import automation as auto

    work_dir = Path.cwd()
    main_py = work_dir / "__main__.py"
    if not (work_dir / "Pulumi.yaml").exists() or not main_py.exists():
        print(f"pulumi_inline: {work_dir} has no Pulumi.yaml/__main__.py", file=sys.stderr)
        return 2
    if str(work_dir) not in sys.path:
        sys.path.insert(0, str(work_dir))

    def program() -> None:
        runpy.run_path(str(main_py), run_name="__main__")

    import yaml

    project = yaml.safe_load((work_dir / "Pulumi.yaml").read_text())["name"]
    opts = auto.LocalWorkspaceOptions(work_dir=str(work_dir), pulumi_command=auto.PulumiCommand(skip_version_check=True))
    try:
        if args.command == "init":
            auto.create_stack(args.stack, project_name=project, program=program, opts=opts)
            print(f"Created stack '{args.stack}'")
            return 0
        stack = auto.select_stack(args.stack, project_name=project, program=program, opts=opts)
        out = lambda line: print(line, end="" if line.endswith("\n") else "\n", flush=True)  # noqa: E731
        # A pack directory runs only through the language host; the same pack as an executable
        # analyzer plugin (testinfra/bin/meshca-policy-pack) runs without one.
        if len(args.policy_pack) > 1:
            print("pulumi_inline: one --policy-pack at most", file=sys.stderr)
            return 2
        packs = []
        if args.policy_pack:
            os.environ["MESHCA_POLICY_PACK_DIR"] = str((work_dir / args.policy_pack[0]).resolve())
            packs = [str(Path(__file__).resolve().parent / "bin" / "meshca-policy-pack")]
        if args.command == "destroy":
            stack.destroy(on_output=out, color="never")
        elif args.command == "preview":
            stack.preview(policy_packs=packs or None, on_output=out, color="never")
        else:
            stack.up(policy_packs=packs or None, on_output=out, color="never", replace=args.replace or None)
    except auto.CommandError as exc:
        print(f"pulumi_inline: {args.command} failed:\n{exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
