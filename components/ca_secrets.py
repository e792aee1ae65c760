"""CaSecrets: phase C on one cluster (C1 backup, C2 deletion, C3 control-plane restart).

C1 saves ``cacerts`` and ``istio-ca-secret`` to 0600 files and reads them back; C2 deletes
both only after each backup still matches the live Secret (dynamic resources in
meshca/providers/ca_secrets.py); C3 restarts istio-system so istiod drops the old root. No
Secret data reaches an input or output: they carry paths and digests only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import pulumi
import pulumi.dynamic

from meshca.plan import Step
from meshca.providers.ca_secrets import CaSecretBackupProvider, CaSecretDeletionProvider

from .step_command import resource_name, step_command
from .step_graph import StepGraph

TYPE = "meshca:index:CaSecrets"


class _SnakeCase:
    """Python attributes are snake_case; the engine and the provider see camelCase."""

    _WIRE = {
        "project_dir": "projectDir",
        "file_sha256": "fileSha256",
        "data_sha256": "dataSha256",
        "verified_backups": "verifiedBackups",
    }
    _PY = {v: k for k, v in _WIRE.items()}

    def translate_input_property(self, prop: str) -> str:
        return self._WIRE.get(prop, prop)

    def translate_output_property(self, prop: str) -> str:
        return self._PY.get(prop, prop)


class CaSecretBackup(_SnakeCase, pulumi.dynamic.Resource, module="meshca", name="CaSecretBackup"):
    """One CA Secret saved to a 0600 file, read back and compared."""

    present: pulumi.Output[bool]
    file_sha256: pulumi.Output[str]
    data_sha256: pulumi.Output[str]

    def __init__(self, name: str, *, cluster: str, secret: str, file: str, argv: Sequence[str], project_dir: str, kubeconfig: str = "", opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(
            CaSecretBackupProvider(),
            name,
            {
                "cluster": cluster,
                "secret": secret,
                "file": file,
                "argv": list(argv),
                "project_dir": project_dir,
                "kubeconfig": kubeconfig,
                "present": None,
                "keys": None,
                "data_sha256": None,
                "file_sha256": None,
                "mode": None,
            },
            opts,
        )


class CaSecretDeletion(_SnakeCase, pulumi.dynamic.Resource, module="meshca", name="CaSecretDeletion"):
    """``kubectl delete secret cacerts istio-ca-secret``, only over verified backups."""

    verified_backups: pulumi.Output[list]

    def __init__(self, name: str, *, cluster: str, argv: Sequence[str], backups: Sequence[pulumi.Input[dict]], project_dir: str, kubeconfig: str = "", opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(
            CaSecretDeletionProvider(),
            name,
            {"cluster": cluster, "argv": list(argv), "backups": list(backups), "project_dir": project_dir, "kubeconfig": kubeconfig, "verified_backups": None},
            opts,
        )


@dataclass
class CaSecretsArgs:
    """Args of CaSecrets."""

    cluster: str
    """Cluster name from meshca:clusters."""
    steps: Sequence[Step]
    """The plan's C1-C3 steps of this cluster, in plan order."""
    graph: StepGraph
    """Where step resources are published for other components' dependencies."""
    project_dir: str
    """Directory the backup paths are relative to."""
    facts: Mapping[str, Any] | None = None
    """Typed facts the policy pack judges this component on, before its steps (components/policy_facts.py)."""


class CaSecrets(pulumi.ComponentResource):
    backups: pulumi.Output[list]

    def __init__(self, name: str, args: CaSecretsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        state = {"cluster": args.cluster, **(args.facts or {})}
        super().__init__(TYPE, name, state, opts)
        backups: dict[str, CaSecretBackup] = {}
        for step in args.steps:
            deps = args.graph.after(step)
            child = pulumi.ResourceOptions(parent=self, depends_on=deps)
            if step.action == "backup-ca-secret":
                resource = CaSecretBackup(
                    resource_name(step),
                    cluster=args.cluster,
                    secret=step.params["secret"],
                    file=step.params["file"],
                    argv=step.argv,
                    project_dir=args.project_dir,
                    kubeconfig=step.env.get("KUBECONFIG", ""),
                    opts=child,
                )
                backups[step.id] = resource
            elif step.action == "delete-ca-secrets":
                by_id = {s.id: s for s in args.steps}
                resource = CaSecretDeletion(
                    resource_name(step),
                    cluster=args.cluster,
                    argv=step.argv,
                    backups=[
                        pulumi.Output.all(
                            secret=by_id[b].params["secret"],
                            file=by_id[b].params["file"],
                            fileSha256=backups[b].file_sha256,
                            getArgv=list(by_id[b].argv),
                        )
                        for b in step.params["backups"]
                    ],
                    project_dir=args.project_dir,
                    kubeconfig=step.env.get("KUBECONFIG", ""),
                    opts=child,
                )
            else:
                resource = step_command(step, parent=self, depends_on=deps)
            args.graph.done(step, resource)
        self.backups = pulumi.Output.from_input([s.params["file"] for s in args.steps if s.action == "backup-ca-secret"])
        self.register_outputs({**state, "backups": self.backups})
