"""STAND-IN for the ``pulumi-resource-command`` resource-provider plugin, v1.2.1 contract.

Why a stand-in: the Go module proxy refuses the real provider
(``go list -m -versions github.com/pulumi/pulumi-command/provider`` -> ``403 Forbidden  server
response: This module version is not available.``, also for the commits of tag v1.2.1 and
sdk/v1.2.1; toolchain/README.md), so no ``pulumi-resource-command`` can be built here, while the
project's Python SDK (pulumi-command 1.2.1) asks the engine for plugin ``command`` 1.2.1.

What it implements: ``command:local:Command`` and the ``command:local:run`` invoke, following
pulumi/pulumi-command tag v1.2.1 (provider/pkg/provider/...) and the framework it is built with,
pulumi/pulumi-go-provider v1.3.0 (provider/go.mod of v1.2.1), served over the engine's
``pulumirpc.ResourceProvider`` gRPC service. Every behaviour below cites the Go source it
transcribes (file:line at those tags). Nothing is copied; nothing here imports meshca.
``command:remote:*`` (SSH) is refused.

``GetPluginInfo`` answers ``1.2.1`` because the engine matches the plugin against the version the
SDK asks for; standins/README.md ("command provider") says what that version means here.

Every command it runs (or refuses to run) is appended as one JSON line to ``$MESHCA_STANDIN_LOG``
when that is set: op, URN, argv, the command, the keys (never values) of the variables it added
to the environment, cwd, exit code, start time and duration.

Launch: ``python -m standins.command_provider [--logtostderr] [-v=N] [--tracing X] ENGINE_ADDR``
(what the engine passes, pulumi/pulumi sdk/go/common/resource/plugin/plugin.go:722-742); it prints
its port on stdout's first line (plugin.go:375-431).
"""

from __future__ import annotations

import json
import os
import secrets as _secrets
import signal
import subprocess
import sys
import threading
import time
from concurrent import futures
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc, plugin_pb2, provider_pb2, provider_pb2_grpc

VERSION = "1.2.1"
COMMAND_TYPE = "command:local:Command"
RUN_TOKEN = "command:local:run"

# Wire sentinels of the engine (pulumi/pulumi sdk/go/common/resource/plugin/rpc.go, sig package).
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
SIG_KEY = "4dabf18193072939515e22adb298388d"
SIG_SECRET = "1b47061264138c4ac30d75fd1eb44270"
SIG_OUTPUT = "d0e6a833031e9bbcd3f4e8bde6ca49a4"

# common/inputs.go:10-14 (ResourceInputs) + local/base.go:24-33 (BaseInputs).
RESOURCE_INPUTS = ("triggers", "create", "update", "delete")
BASE_INPUTS = ("stdin", "logging", "interpreter", "dir", "environment", "assetPaths", "archivePaths",
               "addPreviousOutputInEnv")
COMMAND_INPUTS = RESOURCE_INPUTS + BASE_INPUTS
# local/run.go:33-36 (RunInputs = BaseInputs + command).
RUN_INPUTS = BASE_INPUTS + ("command",)
# local/logging.go:11-16.
LOGGING_VALUES = ("stdout", "stderr", "stdoutAndStderr", "none")
# local/commandOutputs.go:44-49 (non-Windows default).
DEFAULT_INTERPRETER = ["/bin/sh", "-c"]
# util/util.go:29-30.
ENV_STDOUT = "PULUMI_COMMAND_STDOUT"
ENV_STDERR = "PULUMI_COMMAND_STDERR"

# Go's syscall signal strings, for exec.ExitError's "signal: X" text.
_GO_SIGNALS = {signal.SIGKILL: "killed", signal.SIGTERM: "terminated", signal.SIGINT: "interrupt",
               signal.SIGHUP: "hangup", signal.SIGQUIT: "quit", signal.SIGABRT: "aborted",
               signal.SIGSEGV: "segmentation fault", signal.SIGPIPE: "broken pipe"}


# -- property values on the wire ---------------------------------------------------------------
def _from_struct(s: struct_pb2.Struct | None) -> dict:
    return json_format.MessageToDict(s) if s is not None else {}


def _to_struct(d: dict) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    json_format.ParseDict(d, out)
    return out


def _is_secret(v: Any) -> bool:
    return isinstance(v, dict) and v.get(SIG_KEY) == SIG_SECRET


def _is_output(v: Any) -> bool:
    return isinstance(v, dict) and v.get(SIG_KEY) == SIG_OUTPUT


def _is_unknown(v: Any) -> bool:
    if v == UNKNOWN:
        return True
    if _is_secret(v):
        return _is_unknown(v.get("value"))
    if _is_output(v):
        return "value" not in v or _is_unknown(v.get("value"))
    return False


def _normalize(v: Any) -> Any:
    """Output values (acceptOutputs, go-provider provider.go:794-799) become plain/secret/unknown values."""
    if _is_output(v):
        if "value" not in v:
            return UNKNOWN
        inner = _normalize(v["value"])
        return {SIG_KEY: SIG_SECRET, "value": inner} if v.get("secret") else inner
    if _is_secret(v):
        return {SIG_KEY: SIG_SECRET, "value": _normalize(v.get("value"))}
    if isinstance(v, dict):
        return {k: _normalize(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_normalize(x) for x in v]
    return v


def _plain(v: Any) -> Any:
    """The value a command sees: secrets unwrapped (the Go decoder hands the run() plain strings)."""
    if _is_secret(v):
        return _plain(v.get("value"))
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def _urn_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1] if urn else ""


# -- the invocation log ------------------------------------------------------------------------
def _log_invocation(record: dict) -> None:
    path = os.environ.get("MESHCA_STANDIN_LOG")
    if not path:
        return
    line = json.dumps({"standin": "pulumi-resource-command", "version": VERSION, **record}, sort_keys=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


class RunError(Exception):
    pass


def _go_quote(s: str) -> str:
    """Go's %q (strconv.Quote) for the error text of commandOutputs.go:113."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\a":
            out.append("\\a")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\v":
            out.append("\\v")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif not ch.isprintable():
            out.append(f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


# -- the provider ------------------------------------------------------------------------------
class CommandProvider(provider_pb2_grpc.ResourceProviderServicer):
    def __init__(self, engine_address: str | None) -> None:
        self._engine_address = engine_address
        self._engine: engine_pb2_grpc.EngineStub | None = None
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._cancelled = False
        self._supports_old_inputs = False

    # -- engine logging (util/util.go:32-53: every output line as an Info *status* message) ----
    def _engine_stub(self) -> engine_pb2_grpc.EngineStub | None:
        if self._engine is None and self._engine_address:
            try:
                self._engine = engine_pb2_grpc.EngineStub(grpc.insecure_channel(self._engine_address))
            except Exception:  # noqa: BLE001 - logging is best effort
                self._engine_address = None
        return self._engine

    def _log_status(self, urn: str, msg: str) -> None:
        stub = self._engine_stub()
        if stub is None:
            return
        try:
            # go-provider logging.go:56 InfoStatus -> host LogStatus = engine Log with ephemeral.
            stub.Log(engine_pb2.LogRequest(severity=engine_pb2.INFO, message=msg, urn=urn, ephemeral=True), timeout=10)
        except grpc.RpcError:
            pass

    # -- commandOutputs.go:39-146 run() ------------------------------------------------------
    def _run(self, op: str, urn: str, command: str, inputs: dict, outputs: dict) -> None:
        """Run ``command`` as local/commandOutputs.go run(); sets outputs['stdout'/'stderr'] on success."""
        ins = _plain(inputs)
        interp = ins.get("interpreter")
        # commandOutputs.go:41-51: the interpreter when set and non-empty, else /bin/sh -c; the command last.
        argv = (list(interp) if interp else list(DEFAULT_INTERPRETER)) + [command]
        logging = ins.get("logging")
        # logging.go:27-32: nil logs both.
        log_out = logging is None or logging in ("stdout", "stdoutAndStderr")
        log_err = logging is None or logging in ("stderr", "stdoutAndStderr")
        # commandOutputs.go:73-80: dir, else the provider process's working directory (the engine
        # starts providers in its ctx.Pwd, pulumi/pulumi sdk/go/common/resource/plugin/provider_plugin.go:287).
        cwd = ins["dir"] if ins.get("dir") is not None else os.getcwd()
        # commandOutputs.go:81-86: the provider's environment plus `environment` (later entries win,
        # as os/exec dedups Env keeping the last value).
        env = dict(os.environ)
        added: list[str] = []
        for k, v in (ins.get("environment") or {}).items():
            env[k] = str(v)
            added.append(k)
        # commandOutputs.go:88-95: previous stdout/stderr when addPreviousOutputInEnv is nil or true
        # and they are non-empty (the out struct holds the previous run's outputs in Update/Delete).
        prev = _plain(outputs)
        if ins.get("addPreviousOutputInEnv") is None or ins.get("addPreviousOutputInEnv"):
            if prev.get("stdout"):
                env[ENV_STDOUT] = prev["stdout"]
                added.append(ENV_STDOUT)
            if prev.get("stderr"):
                env[ENV_STDERR] = prev["stderr"]
                added.append(ENV_STDERR)
        # commandOutputs.go:97-99: stdin only when non-empty (else os/exec's null device).
        stdin = ins.get("stdin")
        stdin_bytes = stdin.encode() if stdin else None

        record = {"op": op, "urn": urn, "argv": argv, "command": command, "cwd": cwd,
                  "env_keys": sorted(set(added)), "stdin_bytes": len(stdin_bytes or b""),
                  "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        t0 = time.monotonic()
        out_buf: list[bytes] = []
        err_buf: list[bytes] = []
        both: list[bytes] = []  # stdouterrbuf, only for the error text (commandOutputs.go:54)
        both_lock = threading.Lock()
        try:
            if self._cancelled:
                raise OSError("context canceled")
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE if stdin_bytes else subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        except FileNotFoundError as exc:
            msg = (f"chdir {cwd}: no such file or directory" if not os.path.isdir(cwd)
                   else (f"fork/exec {argv[0]}: no such file or directory" if "/" in argv[0]
                         else f'exec: "{argv[0]}": executable file not found in $PATH'))
            _log_invocation({**record, "exit_code": None, "error": str(exc), "seconds": round(time.monotonic() - t0, 3)})
            raise RunError(f"{msg}: running {_go_quote(command)}:\n") from exc
        except OSError as exc:
            _log_invocation({**record, "exit_code": None, "error": str(exc), "seconds": round(time.monotonic() - t0, 3)})
            raise RunError(f"{exc.strerror or exc}: running {_go_quote(command)}:\n") from exc
        with self._lock:
            self._procs.add(proc)

        def pump(stream, buf: list[bytes], log: bool) -> None:
            for line in iter(stream.readline, b""):
                buf.append(line)
                with both_lock:
                    both.append(line)
                if log:
                    self._log_status(urn, line.decode(errors="replace").rstrip("\n"))
            stream.close()

        threads = [threading.Thread(target=pump, args=(proc.stdout, out_buf, log_out), daemon=True),
                   threading.Thread(target=pump, args=(proc.stderr, err_buf, log_err), daemon=True)]
        for t in threads:
            t.start()
        if stdin_bytes:
            try:
                proc.stdin.write(stdin_bytes)
            except BrokenPipeError:
                pass
            finally:
                proc.stdin.close()
        rc = proc.wait()
        for t in threads:
            t.join()
        with self._lock:
            self._procs.discard(proc)
        _log_invocation({**record, "exit_code": rc, "seconds": round(time.monotonic() - t0, 3)})
        if rc != 0:
            # commandOutputs.go:112-114: "<exec error>: running %q:\n<stdout+stderr as they came>".
            exec_err = f"exit status {rc}" if rc > 0 else f"signal: {_GO_SIGNALS.get(-rc, signal.Signals(-rc).name)}"
            raise RunError(f"{exec_err}: running {_go_quote(command)}:\n{b''.join(both).decode(errors='replace')}")
        # commandOutputs.go:142-143: one trailing newline trimmed.
        out = b"".join(out_buf).decode(errors="replace")
        err = b"".join(err_buf).decode(errors="replace")
        outputs["stdout"] = out[:-1] if out.endswith("\n") else out
        outputs["stderr"] = err[:-1] if err.endswith("\n") else err

    # -- plugin / configuration -----------------------------------------------------------------
    def GetPluginInfo(self, request, context):
        # go-provider provider.go:1666-1670; the version main.go passes (cmd/pulumi-resource-command/main.go:31-38).
        return plugin_pb2.PluginInfo(version=VERSION)

    def GetSchema(self, request, context):
        return provider_pb2.GetSchemaResponse(schema=json.dumps(_minimal_schema()))

    def CheckConfig(self, request, context):
        # go-provider provider.go:713-747 + middleware/complexconfig/provider.go:51-56 (no config schema:
        # the news back). NOT done: provider.go:735-736 also adds "__pulumi-go-provider-version".
        return provider_pb2.CheckResponse(inputs=request.news)

    def DiffConfig(self, request, context):
        # infer/provider.go:152-170 sets DiffConfig only for a provider with a Config (pulumi-command has
        # none), so go-provider provider.go:436-439 answers Unimplemented; the engine then takes
        # DiffUnknown without replaces (pulumi/pulumi sdk/go/common/resource/plugin/provider_plugin.go:837-852).
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "DiffConfig is not implemented")

    def Configure(self, request, context):
        # go-provider provider.go:777-800 (780: old inputs are used when the engine sends them to Diff and Delete).
        self._supports_old_inputs = request.sends_old_inputs and request.sends_old_inputs_to_delete
        return provider_pb2.ConfigureResponse(acceptSecrets=True, supportsPreview=True, acceptResources=True,
                                              acceptOutputs=True)

    def Attach(self, request, context):
        # go-provider provider.go:1672-1679: the engine's address for logging.
        self._engine_address = request.address
        self._engine = None
        return empty_pb2.Empty()

    def Cancel(self, request, context):
        # exec.CommandContext (commandOutputs.go:59) kills the process when the request's context ends.
        self._cancelled = True
        with self._lock:
            procs = list(self._procs)
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
        return empty_pb2.Empty()

    # -- resource lifecycle ---------------------------------------------------------------------
    def _check_type(self, urn: str, context) -> None:
        typ = urn.split("::")[2].split("$")[-1] if urn.count("::") >= 3 else ""
        if typ != COMMAND_TYPE:
            context.abort(grpc.StatusCode.UNIMPLEMENTED,
                          f"the pulumi-resource-command stand-in implements {COMMAND_TYPE} only, not {typ or urn!r}")

    def Check(self, request, context):
        # infer/resource.go:994-1047 (DefaultCheck): decode into CommandInputs (failures for unrecognized
        # keys and mismatched types), defaults (none), re-encode (secrets and unknowns are kept).
        self._check_type(request.urn, context)
        news = _normalize(_from_struct(request.news))
        failures = _type_failures(news, COMMAND_INPUTS)
        inputs = {k: v for k, v in news.items() if k in COMMAND_INPUTS}
        return provider_pb2.CheckResponse(inputs=_to_struct(inputs), failures=failures)

    def Diff(self, request, context):
        # infer/resource.go:1132-1253 + go-provider provider.go:169-226.
        self._check_type(request.urn, context)
        state = _normalize(_from_struct(request.olds))
        news = _normalize(_from_struct(request.news))
        for k in request.ignoreChanges:  # resource.go:1160-1165 (top-level keys of state)
            if k in state:
                news[k] = state[k]
        news = {k: v for k, v in news.items() if k != "version" and not k.startswith("__")}
        # resource.go:1190-1210: the engine's old inputs (Configure sets sendsOldInputs), else
        # the CommandInputs fields of the state.
        if self._supports_old_inputs:
            old_inputs = _normalize(_from_struct(request.old_inputs))
        else:
            old_inputs = {k: state[k] for k in COMMAND_INPUTS if k in state}
        detailed: dict[str, int] = {}
        _diff_object([], old_inputs, news, detailed)
        K = provider_pb2.PropertyDiff
        replace_of = {K.ADD: K.ADD_REPLACE, K.DELETE: K.DELETE_REPLACE, K.UPDATE: K.UPDATE_REPLACE}
        out: dict[str, provider_pb2.PropertyDiff] = {}
        replaces: set[str] = set()
        diffs: set[str] = set()
        for path, kind in detailed.items():
            # resource.go:1143-1146 + 1223-1226: forceReplace(k) looks the detailed-diff key up in the
            # schema's inputProperties, so only a change of the WHOLE `triggers` value (key "triggers")
            # is a replace here; an element change ("triggers[0]") is an update the engine turns into a
            # replace because the SDK registers replace_on_changes=["triggers[*]"]
            # (sdk/python/pulumi_command/local/command.py, ~line 807).
            if path == "triggers":
                kind = replace_of[kind]
            out[path] = K(kind=kind, inputDiff=False)
            head = path.split(".")[0].split("[")[0]
            diffs.add(head)
            if kind in replace_of.values():
                replaces.add(head)
        changes = provider_pb2.DiffResponse.DIFF_SOME if detailed else provider_pb2.DiffResponse.DIFF_NONE
        return provider_pb2.DiffResponse(changes=changes, replaces=sorted(replaces), diffs=sorted(diffs),
                                         detailedDiff=out, hasDetailedDiff=True, deleteBeforeReplace=False)

    def Create(self, request, context):
        self._check_type(request.urn, context)
        props = _normalize(_from_struct(request.properties))
        inputs = {k: v for k, v in props.items() if k in COMMAND_INPUTS}
        # commandController.go:42: id = name + 8 random hex characters (NewUniqueHex(name, 8, 0)).
        rid = _urn_name(request.urn) + _secrets.token_hex(4)
        # commandController.go:41: state = inputs; BaseOutputs stdout/stderr "" (non-optional strings).
        state = {**inputs, "stdout": "", "stderr": ""}
        if request.preview:
            # commandController.go:47-50: nothing runs. resource.go:1304-1306 + markComputed
            # (resource.go:545-590, isCreate): outputs that do not mirror an input become unknown.
            state["stdout"] = UNKNOWN
            state["stderr"] = UNKNOWN
            return provider_pb2.CreateResponse(id=rid, properties=_to_struct(state))
        _refuse_assets(inputs, context)
        create = _plain(inputs.get("create"))
        if create is None:  # commandController.go:51-53
            return provider_pb2.CreateResponse(id=rid, properties=_to_struct(state))
        try:
            self._run("create", request.urn, create, inputs, state)  # commandController.go:54-56
        except RunError as exc:
            # go-provider resource.go:1284-1286: a plain error, no partial state: nothing is recorded.
            context.abort(grpc.StatusCode.UNKNOWN, str(exc))
        return provider_pb2.CreateResponse(id=rid, properties=_to_struct(state))

    def Read(self, request, context):
        # infer/resource.go:1351-1360: no CustomRead -> id, properties and inputs back as they are.
        self._check_type(request.urn, context)
        return provider_pb2.ReadResponse(id=request.id, properties=request.properties, inputs=request.inputs)

    def Update(self, request, context):
        self._check_type(request.urn, context)
        olds = _normalize(_from_struct(request.olds))
        news = _normalize(_from_struct(request.news))
        for k in request.ignoreChanges:  # resource.go:1418-1423
            if k in olds:
                news[k] = olds[k]
        news = {k: v for k, v in news.items() if k in COMMAND_INPUTS}
        # commandController.go:74: state = new inputs + the previous BaseOutputs.
        state = {**news, "stdout": olds.get("stdout", ""), "stderr": olds.get("stderr", "")}
        for k in ("assets", "archive"):
            if k in olds:
                state[k] = olds[k]
        if request.preview:
            # commandController.go:75-78; markComputed (resource.go:545-590, not a create): an output
            # that mirrors no input becomes unknown when any input is unknown or differs from the state.
            changed = any(_is_unknown(news.get(k)) or (k in olds and not _equal(news.get(k), olds[k]))
                          for k in COMMAND_INPUTS)
            if changed:
                for k in ("stdout", "stderr", "assets", "archive"):
                    if k in state:
                        state[k] = UNKNOWN
            return provider_pb2.UpdateResponse(properties=_to_struct(state))
        _refuse_assets(news, context)
        # commandController.go:79-86: `update`, else `create`, else nothing.
        cmd = news.get("update") if news.get("update") is not None else news.get("create")
        if cmd is None:
            return provider_pb2.UpdateResponse(properties=_to_struct(state))
        try:
            self._run("update", request.urn, _plain(cmd), news, state)  # commandController.go:88
        except RunError as exc:
            context.abort(grpc.StatusCode.UNKNOWN, str(exc))
        return provider_pb2.UpdateResponse(properties=_to_struct(state))

    def Delete(self, request, context):
        self._check_type(request.urn, context)
        props = _normalize(_from_struct(request.properties))
        # commandController.go:93-99: only `delete`, with the state's inputs and its stdout/stderr.
        if props.get("delete") is None:
            return empty_pb2.Empty()
        outs = {"stdout": props.get("stdout", ""), "stderr": props.get("stderr", "")}
        try:
            self._run("delete", request.urn, _plain(props["delete"]), props, outs)
        except RunError as exc:
            context.abort(grpc.StatusCode.UNKNOWN, str(exc))
        return empty_pb2.Empty()

    # -- functions ------------------------------------------------------------------------------
    def Invoke(self, request, context):
        if request.tok != RUN_TOKEN:
            context.abort(grpc.StatusCode.UNIMPLEMENTED,
                          f"the pulumi-resource-command stand-in implements {RUN_TOKEN} only, not {request.tok!r}")
        args = _normalize(_from_struct(request.args))
        # infer/function.go:153-163: decode failures are returned as failures, nothing runs.
        failures = _type_failures(args, RUN_INPUTS)
        if "command" not in args:
            # mapper/errors.go:109-114.
            failures.append(provider_pb2.CheckFailure(property="command",
                                                      reason="Missing required field 'command' on 'local.RunInputs'"))
        if failures:
            return provider_pb2.InvokeResponse(failures=failures)
        if args.get("assetPaths") is not None or args.get("archivePaths") is not None:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, _ASSETS_REFUSAL)
        # runController.go:25-33: run the command (on every preview and update, run.go:28-30);
        # outputs = inputs + stdout/stderr.
        result = {k: v for k, v in args.items() if k in RUN_INPUTS}
        result.update(stdout="", stderr="")
        try:
            self._run("invoke", "", _plain(args["command"]), args, result)
        except RunError as exc:
            context.abort(grpc.StatusCode.UNKNOWN, str(exc))
        return provider_pb2.InvokeResponse(**{"return": _to_struct(result)})


_ASSETS_REFUSAL = ("assetPaths/archivePaths (local/commandOutputs.go:116-140) are not implemented by the "
                   "pulumi-resource-command stand-in (standins/command_provider.py)")


def _refuse_assets(inputs: dict, context) -> None:
    if inputs.get("assetPaths") is not None or inputs.get("archivePaths") is not None:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, _ASSETS_REFUSAL)


# Go field types of CommandInputs/RunInputs (common/inputs.go:10-14, local/base.go:24-33, local/run.go:33-36)
# for the mapper's messages (pulumi/pulumi sdk/go/common/util/mapper/errors.go:133-168).
_GO_TYPES = {"triggers": ("*[]interface {}", list), "create": ("*string", str), "update": ("*string", str),
             "delete": ("*string", str), "stdin": ("*string", str), "logging": ("*local.Logging", str),
             "interpreter": ("*[]string", list), "dir": ("*string", str),
             "environment": ("*map[string]string", dict), "assetPaths": ("*[]string", list),
             "archivePaths": ("*[]string", list), "addPreviousOutputInEnv": ("*bool", bool), "command": ("string", str)}


def _go_type_of(v: Any) -> str:
    return {str: "string", bool: "bool", float: "float64", int: "float64", list: "[]interface {}",
            dict: "map[string]interface {}"}.get(type(v), type(v).__name__)


def _type_failures(inputs: dict, keys: tuple[str, ...]) -> list:
    """The go-provider mapper's decode errors as check failures (infer/resource.go:1098-1130 with
    mapper.Opts{IgnoreUnrecognized: false}, infer/internal/ende/ende.go:71-86): unrecognized keys and
    wrong types, with the mapper's texts (mapper/errors.go:133-168)."""
    gotype = "local.CommandInputs" if "create" in keys else "local.RunInputs"
    fails = []
    for k, v in inputs.items():
        if k not in keys:
            fails.append(provider_pb2.CheckFailure(property=k, reason=f"Unrecognized field '{k}' on '{gotype}'"))
            continue
        if _is_unknown(v):
            continue
        pv = _plain(v)
        if pv is None:
            continue
        go, t = _GO_TYPES[k]
        elem = {"*[]string": "string", "*map[string]string": "string"}.get(go)
        if not isinstance(pv, t) or isinstance(pv, bool) != (t is bool):
            bad = (k, go, _go_type_of(pv))
        else:
            # mapper_decode.go:174-208: element keys "k[i]" (slices) and "k[key] value" (maps).
            items = list(pv.items()) if isinstance(pv, dict) else list(enumerate(pv))
            wrong = [(f"{k}[{i}] value" if isinstance(pv, dict) else f"{k}[{i}]", x) for i, x in items
                     if elem and not isinstance(x, str) and not _is_unknown(x)]
            bad = (wrong[0][0], elem, _go_type_of(_plain(wrong[0][1]))) if wrong else None
        if bad:
            fails.append(provider_pb2.CheckFailure(
                property=bad[0], reason=f"Field '{bad[0]}' on '{gotype}' must be a '{bad[1]}'; got '{bad[2]}' instead"))
        elif k == "logging" and pv not in LOGGING_VALUES:
            # local/logging.go:18-25: the enum's values.
            fails.append(provider_pb2.CheckFailure(property=k, reason=f"logging: {pv!r} is not one of {', '.join(LOGGING_VALUES)}"))
    return fails


def _equal(a: Any, b: Any) -> bool:
    if _is_unknown(a) or _is_unknown(b):
        return False
    return _plain(a) == _plain(b)


def _diff_object(prefix: list, old: dict, new: dict, acc: dict[str, int]) -> None:
    """pulumi/pulumi sdk/go/common/resource/plugin/provider.go:755-830 (NewDetailedDiffFromObjectDiff):
    nested paths; null counts as absent (resource.PropertyMap.Diff ignores null values)."""
    K = provider_pb2.PropertyDiff
    for k in sorted(set(old) | set(new)):
        o, n = old.get(k), new.get(k)
        path = prefix + [k]
        if o is None and n is None:
            continue
        if o is None:
            acc[_path_str(path)] = K.ADD
        elif n is None:
            acc[_path_str(path)] = K.DELETE
        else:
            _diff_value(path, o, n, acc)


def _diff_value(path: list, o: Any, n: Any, acc: dict[str, int]) -> None:
    K = provider_pb2.PropertyDiff
    if _is_unknown(o) or _is_unknown(n):
        acc[_path_str(path)] = K.UPDATE
        return
    po, pn = (o.get("value") if _is_secret(o) else o), (n.get("value") if _is_secret(n) else n)
    if isinstance(po, dict) and isinstance(pn, dict):
        _diff_object(path, po, pn, acc)
    elif isinstance(po, list) and isinstance(pn, list):
        for i in range(max(len(po), len(pn))):
            if i >= len(po):
                acc[_path_str(path + [i])] = K.ADD
            elif i >= len(pn):
                acc[_path_str(path + [i])] = K.DELETE
            else:
                _diff_value(path + [i], po[i], pn[i], acc)
    elif po != pn:
        acc[_path_str(path)] = K.UPDATE


def _path_str(path: list) -> str:
    s = ""
    for i, p in enumerate(path):
        if isinstance(p, int):
            s += f"[{p}]"
        elif p.replace("_", "a").isalnum() and not p[:1].isdigit():
            s += ("." if i else "") + p
        else:
            s += f'["{p}"]'
    return s


def _minimal_schema() -> dict:
    """A minimal schema: the real one is provider/cmd/pulumi-resource-command/schema.json at v1.2.1
    (78 kB, generated by infer); the engine does not ask for it when a Python program runs."""
    string = {"type": "string"}
    base = {"stdin": string, "logging": {"$ref": "#/types/command:local:Logging"},
            "interpreter": {"type": "array", "items": string}, "dir": string,
            "environment": {"type": "object", "additionalProperties": string},
            "assetPaths": {"type": "array", "items": string}, "archivePaths": {"type": "array", "items": string},
            "addPreviousOutputInEnv": {"type": "boolean"}}
    res_in = {"triggers": {"type": "array", "items": {"$ref": "pulumi.json#/Any"}, "replaceOnChanges": True},
              "create": string, "update": string, "delete": string, **base}
    outs = {"stdout": string, "stderr": string,
            "assets": {"type": "object", "additionalProperties": {"$ref": "pulumi.json#/AssetOrArchive"}},
            "archive": {"$ref": "pulumi.json#/Archive"}}
    return {
        "name": "command", "version": VERSION, "displayName": "Command",
        "description": "STAND-IN (standins/command_provider.py) of pulumi-command v1.2.1's local.Command and local.run",
        "types": {"command:local:Logging": {"type": "string", "enum": [{"name": v, "value": v} for v in LOGGING_VALUES]}},
        "resources": {COMMAND_TYPE: {"inputProperties": res_in, "properties": {**res_in, **outs},
                                      "required": ["stdout", "stderr"]}},
        "functions": {RUN_TOKEN: {"inputs": {"properties": {**base, "command": string}, "type": "object",
                                             "required": ["command"]},
                                  "outputs": {"properties": {**base, "command": string, **outs}, "type": "object",
                                              "required": ["command", "stdout", "stderr"]}}},
    }


def serve(argv: list[str]) -> int:
    # plugin.go:722-742: [--logtostderr] [-v=N] [--tracing ENDPOINT] then the plugin args (the engine address).
    engine = None
    it = iter(argv)
    for a in it:
        if a == "--tracing":
            next(it, None)
        elif a.startswith("-"):
            continue
        else:
            engine = a
    opts = [("grpc.max_receive_message_length", 400 * 1024 * 1024),
            ("grpc.max_send_message_length", 400 * 1024 * 1024)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32), options=opts)
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(CommandProvider(engine), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    # plugin.go:375-431: the first line on stdout is the port.
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=1)
    return 0


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1:]))
