"""Every shipped stack satisfies the engine's project-config check (found by tests/e2e/test_route_staging.py).

The real CLI refuses to run a stack that lacks a key Pulumi.yaml declares without ``default`` or
``value``: pulumi/pulumi pkg/workspace/config.go lines 295-324 (``mergeStackProjectConfig``: a
declared key of the project's namespace, not on the stack, with neither ``Default`` nor ``Value``,
goes to ``missingConfigurationKeys``) and lines 351-355 (``Stack 'NAME' is missing configuration
value 'KEY'``). A declaration is therefore never "optional": an optional key the program defaults
itself (``meshca:batchSize``) must not be declared at all. The real engine said, for the shipped
staging stack (it sets ``meshca:batches``, not ``meshca:batchSize``): ``error: validating stack
config: Stack 'staging' is missing configuration value 'batchSize'``.
"""

from __future__ import annotations

import pytest
import yaml

from harness import ROOT

STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml"))


def engine_missing_keys(project: dict, stack_config: dict) -> list[str]:
    """The keys config.go:295-324 reports missing (declared, of the project's namespace, no default, no value)."""
    name = project["name"]
    missing = []
    for key, decl in sorted((project.get("config") or {}).items()):
        full = key if ":" in key else f"{name}:{key}"
        if full.split(":", 1)[0] != name:
            continue
        decl = decl if isinstance(decl, dict) else {"value": decl}
        if full not in stack_config and "default" not in decl and "value" not in decl:
            missing.append(key)
    return missing


@pytest.mark.parametrize("stack", STACKS)
def test_the_engine_finds_every_declared_key_in_the_shipped_stack(stack):
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    assert engine_missing_keys(project, config) == [], f"the real CLI stops Pulumi.{stack}.yaml before the program runs"


def test_a_stack_without_batch_size_is_accepted_by_the_engine():
    # The program's default for batchSize (meshca/config.py BATCH_SIZE_DEFAULT) can only apply if the
    # engine lets a stack without the key through.
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    config = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    config.pop("meshca:batchSize")
    assert engine_missing_keys(project, config) == []
