"""Pulumi.yaml declares exactly the simple keys the program knows, with the same defaults."""

from __future__ import annotations

import yaml

from meshca.config import SIMPLE_KEYS, _REQUIRED

from harness import ROOT

PULUMI_TYPES = {"str": "string", "bool": "boolean", "int": "integer", "list[str]": "array"}


def test_pulumi_yaml_declares_every_simple_key_with_its_type_and_default():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}}
    declared = project["config"]
    # A key the program defaults itself (default None) is not declared: the engine requires every key
    # Pulumi.yaml declares without a default (pulumi/pulumi pkg/workspace/config.go:295-324;
    # tests/test_project_required_keys.py).
    assert set(declared) == {k for k, (_, default) in SIMPLE_KEYS.items() if default is not None}
    for key, (kind, default) in SIMPLE_KEYS.items():
        if default is None:
            continue
        decl = declared[key]
        assert decl["type"] == PULUMI_TYPES[kind], key
        assert decl["description"], key
        if default is _REQUIRED:
            assert "default" not in decl, key
        else:
            assert decl["default"] == default, key


def test_main_is_thin():
    text = (ROOT / "__main__.py").read_text()
    assert "from components.program import run" in text and text.count("\n") < 10


def test_every_key_pulumi_yaml_requires_is_set_by_every_shipped_stack():
    """The engine's rule (pulumi pkg/workspace/config.go, validateStackConfigAndApplyProjectConfig:
    a key of the project's own namespace declared with neither ``default`` nor ``value`` and not
    set on the stack is collected as missing, and ``pulumi preview``/``up`` stop with "Stack 'S' is
    missing configuration value 'K'"). Pulumi CLI 3.274.1 refused a stack with meshca:batches and
    no meshca:batchSize that way while Pulumi.yaml declared batchSize without a default: prod and
    staging could not be previewed. A declared key without a default must be one every stack sets."""
    import glob

    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    required = sorted(k for k, decl in project["config"].items() if "default" not in decl and "value" not in decl)
    assert "batchSize" not in required
    stacks = sorted(glob.glob(str(ROOT / "Pulumi.*.yaml")))
    assert len(stacks) >= 4
    for path in stacks:
        config = yaml.safe_load(open(path).read())["config"]
        missing = [k for k in required if f"{project['name']}:{k}" not in config]
        assert not missing, f"{path}: the engine would refuse it, missing {missing}"
