"""Part of toolchain/smoke.sh: a Pulumi Automation API *inline* program (no
pulumi-language-python needed) that creates and destroys a Namespace and a
ConfigMap through the built pulumi-resource-kubernetes, on a file:// backend.
Needs KUBECONFIG, PATH/PULUMI_HOME from toolchain/env.sh, and a Python with
pulumi + pulumi_kubernetes (the project's .venv)."""
import os
import shutil
import sys
import tempfile

import pulumi
import pulumi_kubernetes as k8s
from pulumi import automation as auto


def program():
    ns = k8s.core.v1.Namespace("smoke", metadata={"name": "pulumi-smoke"})
    k8s.core.v1.ConfigMap("cm", metadata={"namespace": ns.metadata.name, "name": "cm"}, data={"a": "b"})
    pulumi.export("namespace", ns.metadata.name)


def main():
    tmp = tempfile.mkdtemp(prefix="meshca-smoke-pulumi.")
    os.environ.setdefault("PULUMI_CONFIG_PASSPHRASE", "smoke")
    ws = auto.LocalWorkspaceOptions(
        work_dir=tmp,
        project_settings=auto.ProjectSettings(
            name="toolchain-smoke", runtime="python",
            backend=auto.ProjectBackend(url="file://" + tmp)))
    try:
        stack = auto.create_or_select_stack(stack_name="smoke", project_name="toolchain-smoke",
                                            program=program, opts=ws)
        up = stack.up(on_output=print)
        assert up.summary.result == "succeeded" and up.outputs["namespace"].value == "pulumi-smoke", up
        stack.destroy(on_output=print)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("smoke_pulumi: OK (up + destroy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
