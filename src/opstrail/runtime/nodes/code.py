"""code: runs the node's python3 ``main`` in a separate, limited process.

Protections, and what each one needs (docs/workflows.md repeats this):

- **Separate process** (always): ``python3 -I -S`` (isolated mode, no site packages, no
  environment variables of the server), a fresh empty working directory, stdin/stdout JSON.
- **CPU time** (``RLIMIT_CPU``) and **memory** (``RLIMIT_AS``), set by the child on itself
  before the user code is compiled: needs a POSIX system (Linux, macOS); without the
  ``resource`` module the run continues and the node records a note.
- **Wall-clock timeout** (always): the parent kills the process after
  ``settings.code_timeout_seconds``; the node fails with its own error saying so.
- **No network**: ``unshare -r -n`` puts the process in a new user and network namespace with
  no interfaces. Needs util-linux ``unshare`` and unprivileged user namespaces
  (``kernel.unprivileged_userns_clone=1``, no seccomp profile forbidding ``unshare``). When it
  is not available the code runs with the server's network and the node records a note.
- **Unprivileged user**: not done here (it needs root to switch users); run the server itself
  as an unprivileged user.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, Final

from opstrail.runtime.nodes.base import NodeContext, NodeResult

# The child: limits itself, then runs main(**inputs) and prints one JSON line.
_CHILD: Final = r"""
import json, sys
cpu, mem = int(sys.argv[1]), int(sys.argv[2])
notes = []
try:
    import resource
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
except Exception as exc:
    notes.append("resource limits unavailable: %s" % exc)
payload = json.loads(sys.stdin.read())
scope = {"__name__": "__opstrail_code__"}
try:
    exec(compile(payload["code"], "<code node>", "exec"), scope)
    main = scope.get("main")
    if not callable(main):
        raise NameError("the code defines no main function")
    result = main(**payload["inputs"])
    out = {"ok": True, "result": result, "notes": notes}
except MemoryError:
    out = {"ok": False, "error": "MemoryError: the code exceeded its memory limit", "notes": notes}
except BaseException as exc:
    out = {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc), "notes": notes}
try:
    # allow_nan=False: NaN and Infinity are not JSON, and no store or trace can keep them.
    text = json.dumps(out, default=str, allow_nan=False)
except Exception as exc:
    text = json.dumps({"ok": False, "error": "the result is not JSON: %s" % exc, "notes": notes})
sys.stdout.write("\n__OPSTRAIL_RESULT__" + text + "\n")
"""
_MARKER: Final = "__OPSTRAIL_RESULT__"
MAX_OUTPUT_BYTES: Final = 1_000_000


@dataclass(frozen=True)
class CodeSandbox:
    """How code nodes run: limits and the no-network wrapper found on this machine."""

    timeout_seconds: float = 10.0
    memory_mb: int = 256
    unshare_prefix: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @classmethod
    def detect(cls, *, timeout_seconds: float, memory_mb: int) -> CodeSandbox:
        """Probe once (per server) whether ``unshare -r -n`` works here."""
        notes: list[str] = []
        prefix: tuple[str, ...] = ()
        unshare = shutil.which("unshare")
        if unshare is None:
            notes.append("no network isolation: the unshare command is not installed")
        else:
            try:
                probe = subprocess.run([unshare, "-r", "-n", "true"], capture_output=True,
                                       timeout=5, check=False)
                if probe.returncode == 0:
                    prefix = (unshare, "-r", "-n")
                else:
                    notes.append("no network isolation: unshare -r -n is not permitted here ("
                                 + probe.stderr.decode(errors="replace").strip()[:200] + ")")
            except (OSError, subprocess.SubprocessError) as exc:
                notes.append(f"no network isolation: unshare failed ({exc})")
        return cls(timeout_seconds=timeout_seconds, memory_mb=memory_mb,
                   unshare_prefix=prefix, notes=tuple(notes))

    def run(self, code: str, inputs: dict[str, Any]) -> tuple[Any, list[str]]:
        """Run ``main(**inputs)``; returns its result and notes about missing protections.

        Raises:
            NodeFailure-compatible ``RuntimeFailure``: timeout, crash, error in the code.
        """
        from opstrail.runtime.nodes.base import NodeFailure

        cpu = max(1, int(self.timeout_seconds + 0.999))
        memory = self.memory_mb * 1024 * 1024
        command = [*self.unshare_prefix, sys.executable, "-I", "-S", "-c", _CHILD,
                   str(cpu), str(memory)]
        payload = json.dumps({"code": code, "inputs": inputs}, default=str)
        with tempfile.TemporaryDirectory(prefix="opstrail-code-") as workdir:
            try:
                proc = subprocess.run(
                    command, input=payload.encode(), capture_output=True, cwd=workdir,
                    timeout=self.timeout_seconds, check=False,
                    env={"PATH": os.defpath, "LANG": "C.UTF-8"},
                )
            except subprocess.TimeoutExpired:
                raise NodeFailure(
                    f"the code ran longer than its time limit of {self.timeout_seconds:g} "
                    "seconds and was stopped", code="code_timeout") from None
        stdout = proc.stdout[-MAX_OUTPUT_BYTES:].decode(errors="replace")
        if _MARKER not in stdout:
            stderr = proc.stderr.decode(errors="replace").strip()[-500:]
            if proc.returncode == -signal.SIGXCPU:
                # The CPU limit is the time limit rounded up: reaching it (which can happen
                # just before the wall-clock timeout fires) is the same failure.
                raise NodeFailure(
                    f"the code used more CPU time than its time limit of "
                    f"{self.timeout_seconds:g} seconds and was stopped", code="code_timeout")
            if proc.returncode < 0:
                number = -proc.returncode
                raise NodeFailure(
                    f"the code process was killed by signal {number} (a resource limit or a crash)",
                    code="code_killed")
            raise NodeFailure(f"the code process failed (exit {proc.returncode}): {stderr}",
                              code="code_error")
        result = json.loads(stdout.rsplit(_MARKER, 1)[1])
        notes = [*self.notes, *result.get("notes", [])]
        if not result.get("ok"):
            raise NodeFailure(f"the code raised {result.get('error')}", code="code_error")
        return result.get("result"), notes


_OUTPUT_TYPES: Final[dict[str, type | tuple[type, ...]]] = {
    "string": str,
    "number": (int, float),
    "object": dict,
    "boolean": bool,
    "array[string]": list,
    "array[number]": list,
    "array[object]": list,
    "array[boolean]": list,
}


def handle(ctx: NodeContext) -> NodeResult:
    """Run the code; the returned dict must hold every declared output, of its type."""
    inputs: dict[str, Any] = {}
    for item in ctx.data.get("variables") or []:
        name = str(item.get("variable") or "")
        if name:
            inputs[name] = ctx.pool.get(item.get("value_selector") or [])
    result, notes = ctx.env.code_sandbox.run(str(ctx.data.get("code") or ""), inputs)
    if not isinstance(result, dict):
        raise ctx.fail(f"main must return a dict, it returned {type(result).__name__}",
                       code="code_error")
    declared = ctx.data.get("outputs") or {}
    outputs: dict[str, Any] = {}
    for name, spec in declared.items():
        if name not in result:
            raise ctx.fail(f"output {name!r} is missing from the returned dict",
                           code="code_error")
        value = result[name]
        expected = _OUTPUT_TYPES.get(str((spec or {}).get("type") or ""))
        kind = str((spec or {}).get("type") or "")
        wrong_type = expected is not None and not isinstance(value, expected)
        if kind == "number" and isinstance(value, bool):
            wrong_type = True  # bool is an int subclass, but not a number output
        if value is not None and wrong_type:
            raise ctx.fail(f"output {name!r} must be {spec.get('type')}, got "
                           f"{type(value).__name__}", code="code_error")
        outputs[str(name)] = value
    if not declared:
        outputs = {str(k): v for k, v in result.items()}
    process_data: dict[str, Any] = {}
    if notes:
        process_data["sandbox_notes"] = notes
    return NodeResult(outputs=outputs, inputs=inputs, process_data=process_data)
