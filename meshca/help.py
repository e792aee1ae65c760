"""Help for every command and option, and shell completion generated from the parser tree.

Each command module registers its own arguments; this module adds, in one place, what a
person reads in ``--help``: a description and examples per command (argparse
``description=``/``epilog=`` with ``RawDescriptionHelpFormatter``), and the help of options
several commands share (``--kubeconfig``, ``--context``...). ``meshca completion bash|zsh``
prints a completion script generated from the same tree, so it never drifts from the parser.
A test requires a description and an example for every command and help for every option.
"""

from __future__ import annotations

import argparse
import shlex

from .config import PHASES

STACK = "meshca plan --stack dev"

# command path (space-joined, without "meshca") -> (description, examples)
COMMANDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "": (
        "Move Cloud Service Mesh from Istio CA (Citadel) to Mesh CA with zero downtime, as Pulumi\n"
        "desired state: plan the route, rehearse it on a simulated mesh, check a live cluster.\n"
        "Every problem is one line: <Level> MCA#### <subject>: <problem>; fix: <fix> (meshca explain CODE).",
        ("meshca plan --stack dev", "meshca rehearse --report rehearsal.html", "meshca explain MCA0131", "meshca completion bash > /etc/bash_completion.d/meshca"),
    ),
    "plan": (
        "Preview the stack's position as `pulumi preview` marks resources: per cluster its ordered\n"
        "steps with exact command lines, each marked + (new here), ~ (declared before with other\n"
        "inputs: runs again) or unmarked (already done at the previous position); a summary count;\n"
        "the commands that apply it; the exact stack-file edit that reaches the next position (made\n"
        "by `meshca advance`), or a line saying the migration is complete. Positions are numbered\n"
        "from baseline = 0. Offline: the root of trust is reported as unverifiable (MCA0301) until\n"
        "`meshca check root-of-trust` runs against the cluster.",
        ("meshca plan --stack dev", "meshca plan --stack prod --all --json", "meshca plan --config ../envs/Pulumi.qa.yaml"),
    ),
    "advance": (
        "Edit the stack file to the next position of the route, or to --to TARGET: N (positions\n"
        "are numbered from baseline = 0 as `meshca plan` prints them), PHASE (its last forward\n"
        "position) or PHASE:BATCH. Only meshca:phase and the namespaces' revisions change;\n"
        "comments and layout stay. Refuses, before writing, what the transition guard would\n"
        "refuse of the edit (a skipped phase, a phase finished with namespaces left behind,\n"
        "a move back) and what the config validation refuses: one coded line each, exit 2.",
        ("meshca advance --stack dev", "meshca advance --stack dev --to distribute-root:3 --dry-run",
         "meshca advance --stack staging --to distribute-root-done --json"),
    ),
    "up": (
        "Walk the stack to --to TARGET with Pulumi's Automation API: the current position first\n"
        "(nothing runs again if it already ran), then per position: edit the stack file as\n"
        "`meshca advance` does, `pulumi preview --policy-pack policy`, `pulumi up`, with progress\n"
        "per position and gate. At the first refusal the stack file goes back to the last applied\n"
        "position and meshca stops with the refusal's coded line and MCA1014 (exit 2); after a\n"
        "failed `pulumi up` the file stays at that position (MCA1015, exit 1), so the same command\n"
        "resumes there. Needs an existing stack (pulumi stack init) and its backend.",
        ("meshca up --stack dev --to old-root-removed", "meshca up --stack dev --to 3",
         "meshca up --stack prod --to mesh-ca:2 --engine local --log up-prod.log"),
    ),
    "restart": (
        "Restart the Deployments, StatefulSets and DaemonSets of a namespace onto REVISION and wait\n"
        "for their rollouts (the plan's A2/B2 restart step). Skips workloads already on the\n"
        "revision, refuses when the revision's istiod has no ready replica, names what it cannot\n"
        "restart (bare pods, Job pods).",
        ("meshca restart --context gke_p_us-central1_c1 --namespace shop --revision asm-11910-9-distribute-root",
         "meshca restart --kubeconfig ~/.kube/prod --context prod-1 -n shop --revision asm-11910-9-meshca-ca-migration --timeout 900s"),
    ),
    "preflight": (
        "Check a step's preconditions on the cluster before it runs: the gateway namespaces carry\n"
        "no istio-injection label (MCA0854) and, with --no-operator, no in-cluster Istio operator\n"
        "runs (MCA0855).",
        ("meshca preflight --context gke_p_us-central1_c1 --revision asm-11910-9-distribute-root --gateway-namespace istio-system",
         "meshca preflight --context gke_p_us-central1_c1 --revision asm-11910-9-distribute-root --no-operator"),
    ),
    "overlay": (
        "Write the IstioOperator overlay that lists today's Citadel root in\n"
        "meshConfig.caCertificates, passed to REV2's install as --custom_overlay (step B1).",
        ("meshca overlay citadel-root --root-cert certs/root-cert.pem --output asm-out/citadel-root.yaml",
         "meshca overlay citadel-root --root-cert certs/root-cert.pem --output -"),
    ),
    "mesh-config": (
        "Edit a revision's mesh config (ConfigMap istio-REV): drop-root removes today's Citadel\n"
        "root from meshConfig.caCertificates (step C2). Idempotent.",
        ("meshca mesh-config drop-root --context gke_p_us-central1_c1 --revision asm-11910-9-meshca-ca-migration --root-cert certs/root-cert.pem",),
    ),
    "webhooks": (
        "Guard and prove the move of the `default` revision tag (steps A5 and B4).",
        ("meshca webhooks strays --context gke_p_us-central1_c1 --label istio-injection=enabled --namespace shop",
         "meshca webhooks verify --context gke_p_us-central1_c1 --revision asm-11910-9-distribute-root"),
    ),
    "webhooks strays": (
        "Refuse (MCA0341) when a namespace outside meshca:namespaces still carries a retiring\n"
        "injection label: moving the default tag would change its injector unannounced.",
        ("meshca webhooks strays --context gke_p_us-central1_c1 --label istio-injection=enabled --namespace shop --namespace cart",),
    ),
    "webhooks verify": (
        "Server-side dry-runs proving the default tag moved: an invalid AuthorizationPolicy must be\n"
        "denied by the validating webhook (MCA0342) and a pod the default tag selects must come\n"
        "back with a REVISION sidecar (MCA0343).",
        ("meshca webhooks verify --context gke_p_us-central1_c1 --revision asm-11910-9-distribute-root",),
    ),
    "gateway": (
        "The canary gateway: clone the live one onto a revision (A4, B3, B5), and wait until its\n"
        "Service serves enough ready canary pods (before A5 deletes the old gateway).",
        ("meshca gateway clone --context C --namespace istio-system --deployment istio-ingressgateway --service istio-ingressgateway --name istio-ingressgateway-canary --revision asm-11910-9-distribute-root",),
    ),
    "gateway clone": (
        "Server-side apply the canary Deployment, HPA and PDB cloned from the live gateway, with\n"
        "the istio-proxy container in Istio 1.19's gateway-injection form; refuses a Service that\n"
        "would not select the clone (MCA0346).",
        ("meshca gateway clone --context C --namespace istio-system --deployment istio-ingressgateway --service istio-ingressgateway --name istio-ingressgateway-canary --revision asm-11910-9-distribute-root",),
    ),
    "gateway ready": (
        "Wait until the Service's EndpointSlices hold max(the live gateway's ready replicas, the\n"
        "HPA's minReplicas) ready canary pods injected by REVISION (MCA0345 at the deadline).",
        ("meshca gateway ready --context C --namespace istio-system --deployment istio-ingressgateway --service istio-ingressgateway --name istio-ingressgateway-canary --revision asm-11910-9-distribute-root --timeout 600s",),
    ),
    "check": (
        "The trust checks the gates run, against a live cluster: root-cert (every proxy's roots by\n"
        "SHA-256 fingerprint), workload-cert (issuer by chain verification), trust-domain (each\n"
        "revision's mesh config), root-of-trust (root-cert.pem is the root the cluster distributes).\n"
        "Exit 0 pass, 1 fail, 2 input or cluster error.",
        ("meshca check root-cert --context gke_p_us-central1_c1 --citadel-root certs/root-cert.pem --require CITADEL,MESHCA",
         "meshca check root-of-trust --context gke_p_us-central1_c1 --root-cert certs/root-cert.pem",
         "meshca check workload-cert --context gke_p_us-central1_c1 --source istioctl --json"),
    ),
    "rehearse": (
        None,  # the module's own description stays
        ("meshca rehearse", "meshca rehearse --stack dev --report rehearsal.html", "meshca rehearse --scenario big-bang --json",
         "meshca rehearse --list", "meshca rehearse --traffic edges.yaml --report -"),
    ),
    "promote": (
        "Copy a finished position (phase and namespace map, by role) from one stack file to the\n"
        "next, keeping comments; refuses without evidence of the source's passed gates for the\n"
        "same namespace map (MCA07xx).",
        ("pulumi stack output --json -s dev > dev-evidence.json\nmeshca promote --from dev --to staging --evidence dev-evidence.json",
         "meshca promote --from staging --to prod --evidence staging-evidence.json --dry-run"),
    ),
    "certs": (
        "The four CA files asmcli plugs in (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem).",
        ("meshca certs verify --ca-cert certs/ca-cert.pem --ca-key certs/ca-key.pem --root-cert certs/root-cert.pem --cert-chain certs/cert-chain.pem",),
    ),
    "certs verify": (
        None,
        ("meshca certs verify --ca-cert certs/ca-cert.pem --ca-key certs/ca-key.pem --root-cert certs/root-cert.pem --cert-chain certs/cert-chain.pem",
         "meshca certs verify --ca-cert certs/ca-cert.pem --ca-key certs/ca-key.pem --root-cert certs/root-cert.pem --cert-chain certs/cert-chain.pem --margin-days 60 --json"),
    ),
    "tool-version": (
        "Run TOOL ARGS and require it to print exactly the pinned version (A1/B1's verify-asmcli\n"
        "step; MCA0910 on another version, MCA0911 when it cannot run).",
        ("meshca tool-version --expect 1.19.10-asm.9+config1 -- ./asmcli --version",),
    ),
    "explain": (None, ("meshca explain MCA0131", "meshca explain --json MCA0440")),
    "completion": (
        "Print a shell completion script generated from meshca's own commands and options.",
        ("meshca completion bash > ~/.local/share/bash-completion/completions/meshca",
         "meshca completion zsh > \"${fpath[1]}/_meshca\"",
         "source <(meshca completion bash)"),
    ),
}

# Options several commands share, or left without help where they are registered.
OPTIONS: dict[str, str] = {
    "--kubeconfig": "kubeconfig file (default: the files of $KUBECONFIG, else ~/.kube/config); must exist (MCA1001)",
    "--context": "kubeconfig context (default: the current one); must be defined (MCA1002)",
    "--namespace": "the namespace",
    "--revision": "the revision (istio.io/rev value, e.g. asm-11910-9-distribute-root)",
    "--root-cert": "today's root-cert.pem (the Citadel root the mesh trusts)",
    "--label": "a retiring injection label KEY=VALUE (repeatable)",
    "--service": "the gateway Service",
    "--timeout": "how long to wait (e.g. 600s)",
    "--poll": "seconds between reads",
    "kind": "what to write: citadel-root (the only kind)",
    "action": "what to do: drop-root (the only action)",
    "shell": "bash or zsh",
}


def examples_epilog(examples: tuple[str, ...]) -> str:
    return "examples:\n" + "\n".join("  " + line for ex in examples for line in ex.splitlines())


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    out: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            out.update(action.choices)
    return out


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path, parser
    for name, sub in subcommands(parser).items():
        yield from walk(sub, (*path, name))


def document(root: argparse.ArgumentParser) -> None:
    """Give every command a description and examples and every option a help text."""
    for path, parser in walk(root):
        key = " ".join(path)
        description, examples = COMMANDS.get(key, (None, ()))
        if description and not parser.description:
            parser.description = description
        if not parser.description:
            parser.description = _short_help(root, path)
        if examples and not parser.epilog:
            parser.epilog = examples_epilog(examples)
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        for action in parser._actions:
            if action.help is None and not isinstance(action, argparse._SubParsersAction):
                names = action.option_strings or [action.dest]
                for name in names:
                    if name in OPTIONS:
                        action.help = OPTIONS[name]
                        break


def _short_help(root: argparse.ArgumentParser, path: tuple[str, ...]) -> str | None:
    """The one-line help a command was registered with (its parent's choices action)."""
    parent = root
    for name in path[:-1]:
        parent = subcommands(parent)[name]
    for action in parent._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.dest == path[-1]:
                    return choice.help
    return None


# ----------------------------------------------------------------------------- completion

FILE_OPTIONS = {"--log", "--kubeconfig", "--root-cert", "--output", "--traffic", "--ca-cert", "--ca-key", "--cert-chain", "--citadel-root", "--meshca-root", "--report", "--evidence", "--config"}
STACK_OPTIONS = {"--stack", "--from", "--to"}  # completed from the Pulumi.NAME.yaml files here
# Commands whose --to is a position of the route (plan.resolve_position), not a stack.
POSITION_COMMANDS = {"advance", "up"}


def _tree(root: argparse.ArgumentParser) -> dict[str, dict]:
    """path -> {"subcommands": [...], "options": [...], "choices": {option: [...]}, "files": [...]}"""
    out = {}
    for path, parser in walk(root):
        options, choices, files = [], {}, []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            for opt in action.option_strings:
                options.append(opt)
                if action.choices:
                    choices[opt] = [str(c) for c in action.choices]
                elif action.nargs != 0 and (opt in FILE_OPTIONS or getattr(action.type, "__name__", "") in ("Path", "PosixPath") or str(action.metavar or "").startswith("FILE")):
                    files.append(opt)
            if not action.option_strings and action.choices and not isinstance(action, argparse._SubParsersAction):
                choices[""] = [str(c) for c in action.choices]
        out[" ".join(path)] = {"subcommands": list(subcommands(parser)), "options": options, "choices": choices, "files": files}
    return out


def bash_script(root: argparse.ArgumentParser) -> str:
    tree = _tree(root)
    cases = []
    for key, node in tree.items():
        words = node["subcommands"] + node["choices"].get("", []) + node["options"]
        opt_cases = "".join(
            f"            {shlex.quote(opt)}) COMPREPLY=($(compgen -W {shlex.quote(' '.join(vals))} -- \"$cur\")); return;;\n"
            for opt, vals in node["choices"].items() if opt
        )
        file_cases = "".join(f"            {shlex.quote(opt)}) COMPREPLY=($(compgen -f -- \"$cur\")); return;;\n" for opt in node["files"])
        stack_cases = "".join(
            f"            {shlex.quote(opt)}) COMPREPLY=($(compgen -W \"$(_meshca_stacks)\" -- \"$cur\")); return;;\n"
            if not (key in POSITION_COMMANDS and opt == "--to")
            else f"            {shlex.quote(opt)}) COMPREPLY=($(compgen -W {shlex.quote(' '.join(PHASES))} -- \"$cur\")); return;;\n"
            for opt in node["options"] if opt in STACK_OPTIONS
        )
        cases.append(
            f"        {shlex.quote(key)})\n"
            f"            case \"$prev\" in\n{opt_cases}{file_cases}{stack_cases}            esac\n"
            f"            COMPREPLY=($(compgen -W {shlex.quote(' '.join(words))} -- \"$cur\"));;\n"
        )
    subs = {key: node["subcommands"] for key, node in tree.items() if node["subcommands"]}
    path_logic = "".join(
        f"            {shlex.quote(key)}) case \"$w\" in {'|'.join(shlex.quote(s) for s in names)}) path=\"${{path:+$path }}$w\";; esac;;\n"
        for key, names in subs.items()
    )
    return (
        "# bash completion for meshca, generated by `meshca completion bash` from its parser.\n"
        "_meshca_stacks() {\n"
        "    local f\n"
        "    for f in Pulumi.*.yaml; do [ -e \"$f\" ] && f=\"${f#Pulumi.}\" && echo \"${f%.yaml}\"; done\n"
        "}\n"
        "_meshca() {\n"
        "    local cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"${COMP_WORDS[COMP_CWORD-1]}\" path=\"\" w i\n"
        "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
        "        w=\"${COMP_WORDS[i]}\"\n"
        "        case \"$path\" in\n"
        f"{path_logic}"
        "        esac\n"
        "    done\n"
        "    case \"$path\" in\n"
        f"{''.join(cases)}"
        "    esac\n"
        "}\n"
        "complete -o default -F _meshca meshca\n"
    )


def zsh_script(root: argparse.ArgumentParser) -> str:
    """zsh: the bash function through bashcompinit (zsh's own emulation of complete/compgen)."""
    return (
        "#compdef meshca\n"
        "# zsh completion for meshca, generated by `meshca completion zsh` from its parser.\n"
        "autoload -U +X bashcompinit && bashcompinit\n"
        + bash_script(root).split("\n", 1)[1]
    )


def cmd_completion(args: argparse.Namespace) -> int:
    from .cli import build_parser

    root = build_parser()
    print(bash_script(root) if args.shell == "bash" else zsh_script(root), end="")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("completion", help="print a shell completion script (bash or zsh)")
    p.add_argument("shell", choices=["bash", "zsh"])
    p.set_defaults(func=cmd_completion)
