"""Run untrusted Python (a model's answer to a coding task) in a separate, limited process.

Layers, outermost first (each is tested against a hostile snippet in ``tests/unit/infer/test_sandbox.py``):

1. **Namespaces** (when ``unshare`` works — as root, or with unprivileged user namespaces): a new network
   namespace (no interface but a down loopback: no network at all), a PID namespace with its own
   ``/proc`` (the code sees no host process, and when it ends every process it left is killed) and, as
   root, a mount namespace with a size-limited ``tmpfs`` as its working directory (disk use is capped,
   and the files vanish with the namespace).
2. **Another user** (as root): the code runs as a fresh unprivileged uid/gid with no supplementary
   groups and ``no_new_privs``, so ordinary file permissions keep it out of other users' files (``/root``,
   other sandboxes) and ``RLIMIT_NPROC`` — per user — really caps its processes and threads.
3. **Resource limits** set before the code runs (soft = hard, so they cannot be raised): CPU seconds,
   address space, size of any file written, processes, open files, no core dumps.
4. **An empty environment** (no secrets can be inherited) and ``python -I -S``: no site-packages, no
   ``PYTHON*`` variables, no user site; the standard library only.
5. **An audit hook** (``sys.addaudithook``) installed before the code runs refuses: sockets, ``fork``/
   ``exec``/``spawn``/``system``/``subprocess``, ``ctypes`` (which could remove the hook), signals to
   other processes, ``setrlimit``; writing, deleting, renaming or changing files outside the working
   directory; reading files outside the working directory and the standard library (``/proc``, ``/etc``,
   home folders). Audit hooks are a CPython safety net, not a security boundary by themselves — the
   OS layers above are what hold when something gets past them.
6. **The parent** reads the output in chunks and kills the whole process group past ``output_bytes``,
   and at the wall-clock limit.

Without root or ``unshare`` (where unprivileged user namespaces are disabled) layers 1–2 are skipped
(``isolation()`` says which apply) and the network is refused only by the audit hook.

CPU time past the limit ends the run as ``cpu_limit`` (a SIGXCPU handler reports it; the hard limit one
second later kills), the wall clock as ``timeout``, too much output as ``output_limit``.

What it does not do: the tests run in the same interpreter as the solution, so a solution written to
fool the checker (rebinding ``AssertionError``, or digging the results nonce out of the checker's frames)
could fake a pass. The sandbox protects the host and the run; against a policy that learns to game the
checker itself, run each test in its own sandbox and compare outputs instead.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# The program the sandboxed interpreter runs (``python -I -S -B -c BOOTSTRAP``): read the payload from
# stdin, lower the limits, install the audit hook, run the code and the tests, print the results line.
BOOTSTRAP = r"""
import json, os, resource, signal, sys


def _limits(lim):
    mb = 1 << 20
    for which, soft, hard in (
        (resource.RLIMIT_CPU, lim["cpu_s"], lim["cpu_s"] + 1), (resource.RLIMIT_AS, lim["memory_mb"] * mb, None),
        (resource.RLIMIT_FSIZE, lim["file_mb"] * mb, None), (resource.RLIMIT_NPROC, lim["processes"], None),
        (resource.RLIMIT_NOFILE, lim["open_files"], None), (resource.RLIMIT_CORE, 0, None),
    ):
        resource.setrlimit(which, (soft, soft if hard is None else hard))


def _guard(root):
    read_roots = [root, *(os.path.realpath(p) for p in sys.path if p)]
    devices = {"/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"}
    banned = {"os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "subprocess.Popen",
              "os.kill", "os.killpg", "resource.setrlimit", "resource.prlimit", "sys.remote_exec", "os.startfile"}
    modules = {"ctypes", "_ctypes", "_posixsubprocess", "_xxsubinterpreters"}
    writes = {"os.remove", "os.rmdir", "os.rename", "os.link", "os.symlink", "os.chmod", "os.chown", "os.mkdir",
              "os.truncate", "shutil.rmtree", "os.utime", "os.chdir", "os.chflags", "os.lchflags",
              "os.setxattr", "os.removexattr", "os.chroot"}
    wflags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    busy = []

    def inside(path, roots):
        if isinstance(path, int) or path is None:
            return True
        p = os.path.realpath(os.fsdecode(path))
        return p in devices or any(p == r or p.startswith(r.rstrip("/") + "/") for r in roots)

    def deny(what):
        raise PermissionError("sandbox: " + what + " is not allowed")

    def check(event, args):
        if event in banned or event.startswith(("socket.", "ctypes.", "_winapi.", "winreg.")):
            deny(event)
        if event == "import" and args[0].split(".")[0] in modules:
            deny("import " + args[0])
        if event in writes and not all(inside(a, [root]) for a in args[:2] if isinstance(a, (str, bytes))):
            deny(event + " outside the working directory")
        if event in ("os.listdir", "os.scandir") and args and not inside(args[0] if args[0] else ".", read_roots):
            deny("listing outside the working directory")
        if event == "open":
            path, mode, flags = (list(args) + [None, None])[:3]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & wflags)
            if not inside(path, [root] if writing else read_roots):
                deny(("writing " if writing else "reading ") + os.fsdecode(path))

    def hook(event, args):
        if busy:
            return
        busy.append(1)
        try:
            check(event, args)
        finally:
            busy.pop()

    sys.addaudithook(hook)


def _main():
    payload = json.loads(sys.stdin.buffer.read())
    sys.stdin.close()
    nonce, code, tests = payload["nonce"], payload["code"], payload["tests"]

    def on_cpu_limit(signum, frame):
        os.write(1, ("\n" + nonce + json.dumps({"limit": "cpu"}) + "\n").encode())
        os._exit(124)

    signal.signal(signal.SIGXCPU, on_cpu_limit)
    _limits(payload["limits"])
    if payload["guard"]:
        _guard(os.path.realpath(os.getcwd()))
    ns = {"__name__": "__main__", "__builtins__": __builtins__}
    code_error, failures, passed = None, [], 0
    try:
        exec(compile(code, "solution.py", "exec"), ns)
    except BaseException as e:
        code_error = type(e).__name__ + ": " + str(e)[:500]
    for i, test in enumerate(tests if code_error is None else []):
        try:
            exec(compile(test, "test_%d.py" % i, "exec"), ns)
            passed += 1
        except BaseException as e:
            failures.append({"test": i, "error": type(e).__name__ + ": " + str(e)[:300]})
    try:
        sys.stdout.flush()
    except BaseException:
        pass
    report = {"passed": passed, "total": len(tests), "code_error": code_error, "failures": failures}
    os.write(1, ("\n" + nonce + json.dumps(report) + "\n").encode())
    os._exit(0)


_main()
"""


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one run: CPU seconds, wall seconds, address space (MiB), captured output (bytes), size of
    any written file and of the tmpfs working directory (MiB), processes/threads of the sandbox user, and
    whether the audit-hook layer is on (turn it off only to test the OS layers alone)."""

    cpu_s: int = 5
    wall_s: float = 10.0
    memory_mb: int = 512
    output_bytes: int = 64_000
    file_mb: int = 16
    processes: int = 8
    open_files: int = 64
    guard: bool = True
    python: str = field(default_factory=lambda: sys.executable)

    def __post_init__(self) -> None:
        if min(self.cpu_s, self.memory_mb, self.output_bytes, self.file_mb, self.processes, self.open_files) < 1:
            raise ValueError("every sandbox limit must be >= 1")
        if self.wall_s <= 0:
            raise ValueError("wall_s must be > 0")


@dataclass(frozen=True)
class SandboxResult:
    """``status``: ``ok`` (exit 0), ``error`` (non-zero exit), ``timeout`` (wall clock), ``cpu_limit``,
    ``output_limit``; ``output`` is stdout+stderr (at most ``output_bytes``, results line removed);
    ``report`` is the bootstrap's results (None if it never got to write them)."""

    status: str
    returncode: int | None
    output: str
    wall_s: float
    report: dict[str, Any] | None


@functools.lru_cache(maxsize=1)
def isolation() -> dict[str, bool]:
    """Which OS layers this machine allows: ``namespaces`` (network + PID), ``tmpfs`` and ``uid`` (root)."""
    unshare, setpriv = shutil.which("unshare"), shutil.which("setpriv")
    root = os.geteuid() == 0
    if unshare is None:
        return {"namespaces": False, "tmpfs": False, "uid": False}
    probe = [unshare, "--net", "--pid", "--fork", "--kill-child", "--mount-proc"]
    if not root:
        probe.insert(1, "--map-root-user")
    ok = _probe([*probe, "true"])
    tmpfs = root and ok and _probe([unshare, "--mount", "--", "mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs",
                                    tempfile.gettempdir()])
    return {"namespaces": ok, "tmpfs": tmpfs, "uid": root and setpriv is not None and ok}


def _probe(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=10, env={}).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _command(workdir: str, limits: SandboxLimits, uid: int) -> list[str]:
    """The argv that runs the bootstrap in ``workdir`` with every layer this machine allows."""
    layers = isolation()
    python = [limits.python, "-I", "-S", "-B", "-c", BOOTSTRAP]
    if not layers["namespaces"]:
        return python
    unshare = shutil.which("unshare") or "unshare"
    ns = [unshare, "--net", "--pid", "--fork", "--kill-child", "--mount-proc"]
    if not layers["uid"]:
        return [*ns[:1], "--map-root-user", *ns[1:], "--", *python]
    setpriv = shutil.which("setpriv") or "setpriv"
    drop = [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs", "--", *python]
    if not layers["tmpfs"]:
        return [*ns, "--", *drop]
    mount = (f'mount -t tmpfs -o size={limits.file_mb}m,mode=0700,uid={uid},gid={uid} tmpfs "$0" '
             '&& cd "$0" && exec "$@"')
    return [*ns, "--mount", "--", "/bin/sh", "-c", mount, workdir, *drop]


def run_python(code: str, *, tests: Sequence[str] = (), limits: SandboxLimits | None = None) -> SandboxResult:
    """Run ``code`` and then each of ``tests`` (Python source run in the code's namespace) in the sandbox.

    The report counts the tests that ran without an exception (``passed`` of ``total``) and says whether
    ``code`` itself raised (``code_error``)."""
    limits = limits or SandboxLimits()
    nonce = secrets.token_hex(16)
    uid = 100_000 + secrets.randbelow(1_000_000_000)
    payload = {"code": code, "tests": list(tests), "nonce": nonce, "guard": limits.guard,
               "limits": {"cpu_s": limits.cpu_s, "memory_mb": limits.memory_mb, "file_mb": limits.file_mb,
                          "processes": limits.processes, "open_files": limits.open_files}}
    with tempfile.TemporaryDirectory(prefix="rk-sandbox-") as workdir:
        if isolation()["uid"]:
            os.chown(workdir, uid, uid)
        t0 = time.perf_counter()
        proc = subprocess.Popen(_command(workdir, limits, uid), cwd=workdir, env={}, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        status, output = _communicate(proc, json.dumps(payload).encode(), limits, t0)
        wall = time.perf_counter() - t0
    return _result(status, proc.returncode, output, nonce, wall)


def _communicate(proc: subprocess.Popen[bytes], payload: bytes, limits: SandboxLimits, t0: float) -> tuple[str, bytes]:
    """Feed the payload, read output in chunks until EOF; kill the process group past the output cap or
    the wall-clock limit. Returns (status so far, output)."""
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(payload)
        proc.stdin.close()
    except BrokenPipeError:
        pass
    chunks: list[bytes] = []
    size, status = 0, ""
    fd = proc.stdout.fileno()
    while True:
        left = limits.wall_s - (time.perf_counter() - t0)
        if left <= 0:
            status = "timeout"
            break
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limits.output_bytes:
            status = "output_limit"
            break
    if status:
        _kill(proc)
    try:
        proc.wait(timeout=max(0.1, limits.wall_s - (time.perf_counter() - t0)))
    except subprocess.TimeoutExpired:
        status = status or "timeout"
        _kill(proc)
    proc.stdout.close()
    return status, b"".join(chunks)[: limits.output_bytes]


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the sandbox's whole process group (the namespace's processes die with its init)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _result(status: str, returncode: int | None, raw: bytes, nonce: str, wall: float) -> SandboxResult:
    """Split the results line (prefixed by the nonce) from the program's output; classify the exit."""
    text = raw.decode("utf-8", errors="replace")
    report, at = None, text.rfind(nonce)
    if at >= 0:
        try:
            report = json.loads(text[at + len(nonce):].split("\n", 1)[0])
        except ValueError:
            report = None
        text = text[: max(at - 1, 0)]  # the results line starts with a newline of its own
    if report is not None and report.get("limit") == "cpu":
        status, report = "cpu_limit", None
    if not status:
        if returncode in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
            status = "cpu_limit"
        else:
            status = "ok" if returncode == 0 else "error"
    return SandboxResult(status, returncode, text, wall, report)


@dataclass(frozen=True)
class PythonCheck:
    """The outcome of checking a solution against unit tests: tests passed of total, and the run."""

    passed: int
    total: int
    run: SandboxResult

    @property
    def reward(self) -> float:
        """The fraction of tests passed (0 if the program did not finish cleanly)."""
        return self.passed / self.total if self.total and self.run.status == "ok" else 0.0


def extract_code(response: str) -> str:
    """The code of a response: the longest ```python (or bare ```) fenced block, else the whole text."""
    import re

    blocks = re.findall(r"```(?:python|py|python3)?[ \t]*\n(.*?)```", response, flags=re.DOTALL | re.IGNORECASE)
    return max(blocks, key=len) if blocks else response


def check_python(response: str, tests: Sequence[str] | str, *, limits: SandboxLimits | None = None) -> PythonCheck:
    """Run the code in ``response`` and ``tests`` (one source string per test, or one string of asserts
    counted as a single test) in the sandbox."""
    test_list = [tests] if isinstance(tests, str) else list(tests)
    if not test_list:
        raise ValueError("check_python needs at least one test")
    run = run_python(extract_code(response), tests=test_list, limits=limits)
    passed = int(run.report.get("passed", 0)) if run.report else 0
    return PythonCheck(passed if run.report and not run.report.get("code_error") else 0, len(test_list), run)
