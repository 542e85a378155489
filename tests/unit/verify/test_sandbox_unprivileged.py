"""The escape suite's core as an unprivileged user: CI runs the tests as root, where bwrap starts with
privileges; users run them as themselves, where bwrap needs unprivileged user namespaces. When this test
process is root, the core runs in a subprocess as uid/gid 65534 (nobody); otherwise as the current user.

The unprivileged process can itself read the canary and write into the canary folder (both are open to
everyone): the sandbox it starts must not. It fails, never skips, when something it needs is missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import rewardkit
from rewardkit.verify.sandbox import SandboxLimits, isolation, run_python

NOBODY = 65534
SRC = str(Path(rewardkit.__file__).resolve().parents[1])

# Runs under the unprivileged user: argv = [secret file, path to create]; prints one JSON object.
CORE = r'''
import json, os, sys
from rewardkit.verify import sandbox
from rewardkit.verify.sandbox import SandboxLimits, isolation, run_python

secret_path, new_path = sys.argv[1], sys.argv[2]
secret = open(secret_path).read()  # this user may read it; the code in its sandbox may not
safety = ("import os as _os\nif _os.getpid() != 2 or _os.path.exists('/etc/passwd'):\n"
          "    raise SystemExit('refusing to run a hostile snippet outside the sandbox')\n")
me = os.getpid()
snippets = {
    "read": "print(open(%r).read())" % secret_path,
    "passwd": "print(open('/etc/passwd').read())",
    "dir_fd": "import os\nwd = os.open('.', os.O_RDONLY)\nprint(os.read(os.open('../' * 9 + %r, os.O_RDONLY, dir_fd=wd), 999))"
              % secret_path[1:],
    "write": "open(%r, 'w').write('pwned')" % new_path,
    "fork": "import os\nprint(os.fork())",
    "spawn": "import os\nprint(os.posix_spawn(%r, ['python', '-c', %r], {}))" % (sys.executable, "open(%r, 'w')" % new_path),
    "inet": "import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)",
    "unix": "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect(%r)" % (os.path.dirname(new_path) + "/s.sock"),
    "kill": "import os, signal\nos.kill(%d, signal.SIGKILL)" % me,
    "environ": "print(open('/proc/%d/environ').read())" % me,
    "mknod": "import os\nos.mkfifo('fifo')",
    "ctypes": "import ctypes",
    "cpu": "while True:\n    pass",
}
out = {"uid": os.getuid(), "isolation": isolation(), "problem": sandbox._plan(sys.executable).problem}
if out["isolation"]["bwrap"]:
    for guard in (True, False):
        for name, code in snippets.items():
            r = run_python(safety + code, limits=SandboxLimits(cpu_s=1, wall_s=8, guard=guard))
            out["%s/%s" % (name, "hook-on" if guard else "hook-off")] = {
                "status": r.status, "error": r.report and r.report["code_error"],
                "leak": any(s in r.output for s in (secret, "root:x:0:0", os.environ["RK_SECRET"]))}
out["created"] = os.path.exists(new_path)
print(json.dumps(out))
'''


def run_as(uid: int, argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as ``uid`` (from root: uid = gid, no supplementary groups; else as we are)."""
    ids = {"user": uid, "group": uid, "extra_groups": []} if os.geteuid() == 0 else {}
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, **ids, **kwargs)  # type: ignore[call-overload]


def interpreter_for(uid: int) -> str:
    """A Python >= 3.10 that ``uid`` can run: this one when its files are readable by everyone, else the
    system's (a root-only pyenv under /root is not)."""
    candidates = [os.path.realpath(sys.executable), shutil.which("python3"), "/usr/bin/python3", "/usr/local/bin/python3"]
    tried = []
    for exe in dict.fromkeys(c for c in candidates if c):
        try:
            probe = run_as(uid, [exe, "-c", "import sys; assert sys.version_info >= (3, 10)"], env={}, cwd="/")
        except OSError as e:  # cannot even be executed by uid
            tried.append(f"{exe}: {e.strerror}")
            continue
        if probe.returncode == 0:
            return exe
        tried.append(f"{exe}: {(probe.stderr.strip().splitlines() or [f'exit {probe.returncode}'])[-1]}")
    pytest.fail(f"no Python >= 3.10 that uid {uid} can run, so the sandbox cannot be shown to work "
                f"unprivileged; install one readable by every user (tried: {'; '.join(tried)})")


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A host folder everyone may read and write, with a secret in it."""
    folder = Path(tempfile.mkdtemp(prefix="rk-unprivileged-"))
    os.chmod(folder, 0o777)
    (folder / "secret.txt").write_text("rk-unprivileged-secret-" + os.urandom(8).hex(), encoding="utf-8")
    os.chmod(folder / "secret.txt", 0o644)
    yield folder
    shutil.rmtree(folder)


def test_escape_core_holds_as_an_unprivileged_user(open_folder: Path) -> None:
    uid = NOBODY if os.geteuid() == 0 else os.geteuid()
    userns = Path("/proc/sys/user/max_user_namespaces").read_text(encoding="utf-8").strip()
    assert int(userns) > 0, f"user namespaces are disabled (max_user_namespaces = {userns}): bwrap cannot run unprivileged"
    python = interpreter_for(uid)
    env = {"PYTHONPATH": SRC, "PATH": os.environ.get("PATH", os.defpath), "RK_SECRET": "rk-env-secret"}
    secret, created = open_folder / "secret.txt", open_folder / "created.txt"
    proc = run_as(uid, [python, "-c", CORE, str(secret), str(created)], env=env, cwd=str(open_folder))
    assert proc.returncode == 0, f"the core did not run as uid {uid} with {python} (PYTHONPATH={SRC}): {proc.stderr}"
    out = json.loads(proc.stdout)
    assert out["uid"] == uid
    assert out["isolation"]["bwrap"], f"bwrap does not start a sandbox for uid {uid}: {out['problem']}"
    assert not out["created"] and not created.exists()
    for guard in ("hook-on", "hook-off"):
        runs = {name.split("/")[0]: run for name, run in out.items() if name.endswith("/" + guard)}
        assert not any(run["leak"] for run in runs.values()), runs
        for name in ("read", "passwd", "dir_fd", "write", "fork", "spawn", "inet", "unix", "kill", "environ",
                     "mknod", "ctypes"):
            assert runs[name]["status"] == "ok" and runs[name]["error"], (guard, name, runs[name])
        assert "PermissionError" in runs["fork"]["error"] and "PermissionError" in runs["spawn"]["error"]
        assert runs["cpu"]["status"] == "cpu_limit"
        if guard == "hook-off":  # the OS layers alone: the files are not there
            assert "FileNotFoundError" in runs["read"]["error"] and "FileNotFoundError" in runs["passwd"]["error"]


def test_threads_are_capped_under_an_unprivileged_host_uid() -> None:
    """RLIMIT_NPROC binds only a non-root host uid: as root, bwrap runs under a fresh random uid when
    every user can read the interpreter (``fresh_host_uid``), and the thread cap then holds."""
    python = interpreter_for(NOBODY) if os.geteuid() == 0 else sys.executable
    assert isolation(python)["fresh_host_uid"] == (os.geteuid() == 0), isolation(python)
    code = ("import threading, time\nn = 0\ntry:\n    for _ in range(1000):\n"
            "        threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n        n += 1\n"
            "except RuntimeError:\n    pass\nprint(n)")
    limits = SandboxLimits(python=python, processes=6, guard=False, wall_s=10)
    result = run_python(code, limits=limits)
    assert result.status == "ok" and 0 < int(result.output) < limits.processes, result
