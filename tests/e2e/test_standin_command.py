"""The pulumi-resource-command stand-in (standins/command_provider.py) under the REAL Pulumi CLI.

An inline Automation-API program (the Python language host cannot be built, toolchain/README.md)
declares ``pulumi_command.local.Command``s and a ``local.run_output``; the real ``pulumi`` of the
toolchain runs it on a ``file://`` backend with the stand-in installed as plugin ``command`` 1.2.1
in a temp PULUMI_HOME. What ran is read from the stand-in's ``$MESHCA_STANDIN_LOG``. Expectations
come from pulumi-command v1.2.1 (provider/pkg/provider/local/commandController.go,
commandOutputs.go) and the engine, never from the stand-in.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from standins.install_command_plugin import install  # noqa: E402
from testinfra.cluster import toolchain_bin  # noqa: E402

pytestmark = pytest.mark.e2e

PROJECT = "standin-command"
STACK = "t"


class Harness:
    def __init__(self, tmp: Path, program=None):
        from pulumi import automation as auto

        bindir = toolchain_bin(REPO)
        pulumi = bindir / "pulumi"
        if not os.access(pulumi, os.X_OK):
            pytest.fail(f"{pulumi} missing: run `make toolchain` first (or set MESHCA_TOOLCHAIN_BIN)", pytrace=False)
        self.tmp = tmp
        self.home = tmp / "pulumi-home"
        install(self.home, pulumi, sys.executable)
        self.log = tmp / "standin.log"
        self.work = tmp / "work"
        self.work.mkdir()
        (tmp / "state").mkdir()
        self.cfg: dict = {}
        env = {
            "PULUMI_HOME": str(self.home),
            "PULUMI_BACKEND_URL": f"file://{tmp / 'state'}",
            "PULUMI_CONFIG_PASSPHRASE": "x",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "MESHCA_STANDIN_LOG": str(self.log),
        }
        opts = auto.LocalWorkspaceOptions(
            work_dir=str(self.work),
            pulumi_home=str(self.home),
            env_vars=env,
            pulumi_command=auto.PulumiCommand(root=str(bindir.parent), skip_version_check=True),
            project_settings=auto.ProjectSettings(name=PROJECT, runtime="python",
                                                  backend=auto.ProjectBackend(url=env["PULUMI_BACKEND_URL"])),
        )
        self.stack = auto.create_or_select_stack(stack_name=STACK, project_name=PROJECT, program=program or self.program,
                                                 opts=opts)

    def program(self) -> None:
        import pulumi
        from pulumi_command import local

        c = self.cfg
        a = local.Command(
            "a",
            create=c["a_create"],
            delete="echo deleting-a \"$PULUMI_COMMAND_STDOUT\"",
            environment=c["a_env"],
            opts=pulumi.ResourceOptions(ignore_changes=c.get("a_ignore")),
        )
        t = local.Command("t", create="echo t-created", delete="echo deleting-t", triggers=c["t_triggers"])
        if c.get("fail"):
            local.Command("bad", create="echo to-stdout; echo boom-on-stderr >&2; exit 3")
        run = local.run_output(command="echo ran-$((20+22))")
        pulumi.export("a_stdout", a.stdout)
        pulumi.export("a_stderr", a.stderr)
        pulumi.export("t_id", t.id)
        pulumi.export("run_stdout", run.stdout)

    def entries(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def ran_since(self, n: int, *, ops=("create", "update", "delete")) -> list[dict]:
        return [e for e in self.entries()[n:] if e["op"] in ops]


UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's unknown sentinel on the wire


def _preview_outputs(events: list, name: str) -> dict:
    outs = [e.res_outputs_event.metadata.new.outputs for e in events
            if e.res_outputs_event and e.res_outputs_event.metadata.urn.endswith("::" + name)]
    assert len(outs) == 1, outs
    return outs[0]


def _name(entry: dict) -> str:
    return entry["urn"].rsplit("::", 1)[-1]


@pytest.fixture(scope="module")
def h(tmp_path_factory):
    return Harness(tmp_path_factory.mktemp("standin-command"))


def test_lifecycle_under_the_real_cli(h):
    from pulumi import automation as auto

    t0 = time.monotonic()
    h.cfg.update(a_create="echo hello-$GREETING; echo warn >&2", a_env={"GREETING": "one"}, t_triggers=[1])

    # 1. preview of a new stack: nothing runs but the invoke (run.go:28-30: always run).
    # The outputs that mirror no input are unknown (go-provider v1.3.0 infer/resource.go:545-590).
    n = len(h.entries())
    events: list = []
    h.stack.preview(color="never", on_event=events.append)
    assert h.ran_since(n) == []
    assert [e["op"] for e in h.entries()[n:]] == ["invoke"]
    outs = _preview_outputs(events, "a")
    assert outs["stdout"] == UNKNOWN and outs["stderr"] == UNKNOWN and outs["create"] == "echo hello-$GREETING; echo warn >&2"

    # 2. up: `create` runs once per Command, with environment and /bin/sh -c; one trailing newline trimmed.
    n = len(h.entries())
    res = h.stack.up(color="never")
    created = h.ran_since(n)
    assert sorted((_name(e), e["op"]) for e in created) == [("a", "create"), ("t", "create")]
    a_create = next(e for e in created if _name(e) == "a")
    assert a_create["argv"] == ["/bin/sh", "-c", "echo hello-$GREETING; echo warn >&2"]
    assert a_create["env_keys"] == ["GREETING"] and a_create["exit_code"] == 0
    assert res.outputs["a_stdout"].value == "hello-one"
    assert res.outputs["a_stderr"].value == "warn"
    assert res.outputs["t_id"].value.startswith("t") and len(res.outputs["t_id"].value) == 9  # NewUniqueHex(name, 8, 0)
    assert res.outputs["run_stdout"].value == "ran-42"
    t_id = res.outputs["t_id"].value

    # 3. no change: nothing runs (only the invoke).
    n = len(h.entries())
    res = h.stack.up(color="never")
    assert h.ran_since(n) == []
    assert res.summary.resource_changes.get("same") == 3  # stack + a + t
    assert res.outputs["run_stdout"].value == "ran-42"

    # 4. environment changed but ignore_changes=["environment"]: nothing runs.
    h.cfg.update(a_env={"GREETING": "two"}, a_ignore=["environment"])
    n = len(h.entries())
    h.stack.up(color="never")
    assert h.ran_since(n) == []

    # 5. `create` changed, no `update`: a preview runs nothing; up runs the new `create` as an
    # update (commandController.go:79-83) with the previous stdout in PULUMI_COMMAND_STDOUT
    # (commandOutputs.go:88-95); the ignored environment keeps its old value.
    h.cfg.update(a_create='echo again-$GREETING prev="$PULUMI_COMMAND_STDOUT"')
    n = len(h.entries())
    events = []
    pv = h.stack.preview(color="never", on_event=events.append)
    assert h.ran_since(n) == []
    assert pv.change_summary.get(auto.OpType.UPDATE) == 1
    assert _preview_outputs(events, "a")["stdout"] == UNKNOWN
    n = len(h.entries())
    res = h.stack.up(color="never")
    ran = h.ran_since(n)
    assert [(_name(e), e["op"]) for e in ran] == [("a", "update")]
    assert ran[0]["env_keys"] == ["GREETING", "PULUMI_COMMAND_STDERR", "PULUMI_COMMAND_STDOUT"]
    assert res.outputs["a_stdout"].value == "again-one prev=hello-one"
    assert res.summary.resource_changes.get("update") == 1

    # 6. triggers changed: replace (create the new one, then delete the old, running `delete`).
    h.cfg.update(t_triggers=[2])
    n = len(h.entries())
    res = h.stack.up(color="never")
    ran = h.ran_since(n)
    assert [(_name(e), e["op"]) for e in ran] == [("t", "create"), ("t", "delete")]
    assert res.summary.resource_changes.get("replace") == 1
    assert res.outputs["t_id"].value != t_id

    # 7. a failing command fails the up with the real error form (commandOutputs.go:112-114).
    h.cfg.update(fail=True)
    n = len(h.entries())
    with pytest.raises(auto.CommandError) as err:
        h.stack.up(color="never")
    text = str(err.value)
    assert 'exit status 3: running "echo to-stdout; echo boom-on-stderr >&2; exit 3"' in text
    assert "boom-on-stderr" in text
    bad = [e for e in h.ran_since(n) if _name(e) == "bad"]
    assert len(bad) == 1 and bad[0]["exit_code"] == 3
    # not recorded in the state: the next up creates it again (and fails again).
    h.cfg.update(fail=False)

    # 8. destroy runs each `delete` with the last stdout in the environment.
    n = len(h.entries())
    h.stack.destroy(color="never")
    ran = h.ran_since(n)
    assert sorted((_name(e), e["op"]) for e in ran) == [("a", "delete"), ("t", "delete")]
    a_del = next(e for e in ran if _name(e) == "a")
    assert "PULUMI_COMMAND_STDOUT" in a_del["env_keys"]
    assert time.monotonic() - t0 < 90


def test_inputs_secrets_and_unknowns(tmp_path_factory):
    """stdin, dir, interpreter, logging; a secret input stays secret in the state while stdout does
    not become secret (go-provider v1.3.0 infer/resource.go:592-630, ensureDefaultSecrets 772-810:
    only outputs named like an input inherit secretness); an unknown input at preview."""
    from pulumi import automation as auto

    tmp = tmp_path_factory.mktemp("standin-command-inputs")
    sub = tmp / "sub"
    sub.mkdir()

    def program() -> None:
        import pulumi
        from pulumi_command import local

        first = local.Command("first", create="echo from-first")
        local.Command(
            "opts",
            create="import os, sys; print(sys.stdin.read().upper(), os.getcwd(), os.environ['TOKEN'])",
            interpreter=[sys.executable, "-c"],
            stdin="abc",
            dir=str(sub),
            environment={"TOKEN": pulumi.Output.secret("s3cr3t")},
            logging=local.Logging.NONE,
        )
        dep = local.Command("dep", create=first.stdout.apply(lambda s: f"echo got-{s}"))
        pulumi.export("dep", dep.stdout)

    h = Harness(tmp, program)
    n = len(h.entries())
    h.stack.preview(color="never")
    # preview: `dep`'s create is unknown (first.stdout is unknown until first runs) and nothing runs.
    assert h.ran_since(n) == []
    res = h.stack.up(color="never")
    assert res.outputs["dep"].value == "got-from-first"
    opts = next(e for e in h.ran_since(n) if _name(e) == "opts")
    assert opts["cwd"] == str(sub) and opts["stdin_bytes"] == 3 and opts["argv"][:2] == [sys.executable, "-c"]
    state = h.stack.export_stack().deployment
    res_opts = next(r for r in state["resources"] if r["urn"].endswith("::opts"))
    assert res_opts["outputs"]["stdout"] == f"ABC {sub} s3cr3t"  # not secret, as in 1.2.1
    # the secret input is still a secret in the state (`stack export` shows it decrypted, as "plaintext").
    token = res_opts["outputs"]["environment"]["TOKEN"]
    assert token["4dabf18193072939515e22adb298388d"] == "1b47061264138c4ac30d75fd1eb44270", token
    h.stack.destroy(color="never")


def test_plugin_handshake_and_check_failures():
    """The plugin as the engine launches it (port on stdout's first line, pulumi/pulumi
    sdk/go/common/resource/plugin/plugin.go:375-431) and what go-provider v1.3.0 answers for
    GetPluginInfo, Configure (provider.go:777-800, 1666-1670) and ill-typed inputs (mapper texts)."""
    import subprocess

    import grpc
    from google.protobuf import empty_pb2, struct_pb2
    from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

    proc = subprocess.Popen([str(REPO / "standins" / "pulumi-resource-command"), "127.0.0.1:1"],
                            stdout=subprocess.PIPE, env={**os.environ, "MESHCA_PYTHON": sys.executable})
    try:
        port = int(proc.stdout.readline())
        stub = provider_pb2_grpc.ResourceProviderStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
        assert stub.GetPluginInfo(empty_pb2.Empty(), timeout=10).version == "1.2.1"
        conf = stub.Configure(provider_pb2.ConfigureRequest(acceptSecrets=True, sends_old_inputs=True,
                                                            sends_old_inputs_to_delete=True), timeout=10)
        assert (conf.acceptSecrets, conf.supportsPreview, conf.acceptResources, conf.acceptOutputs) == (True,) * 4
        news = struct_pb2.Struct()
        news.update({"create": 3, "environment": {"A": True}, "bogus": "x", "logging": "stdoutAndStderr"})
        res = stub.Check(provider_pb2.CheckRequest(urn="urn:pulumi:s::p::command:local:Command::c", news=news), timeout=10)
        reasons = sorted(f.reason for f in res.failures)
        assert reasons == [
            "Field 'create' on 'local.CommandInputs' must be a '*string'; got 'float64' instead",
            "Field 'environment[A] value' on 'local.CommandInputs' must be a 'string'; got 'bool' instead",
            "Unrecognized field 'bogus' on 'local.CommandInputs'",
        ]
        with pytest.raises(grpc.RpcError) as err:
            stub.DiffConfig(provider_pb2.DiffRequest(), timeout=10)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        proc.terminate()
        proc.wait(timeout=10)
