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
