"""Hostile snippets against the sandbox, each run with the audit hook on and off (``guard``): with it off,
the OS layers (mount/user/PID/network namespaces, seccomp, rlimits) must hold alone.

Each snippet tries its attacks through ``attempt(name, fn)``, which prints ``name DONE <value>`` or
``name FAILED <exception>``; a test asserts which attempts failed and, above all, the concrete outcome on
the host: canary files (in pytest's ``tmp_path`` and in ``/tmp``) unchanged, files the code tried to
create absent, secrets (file contents, environment) absent from the output, host processes alive,
host sockets never connected to. The first escapes listed come from probing rewardkit 0.1's sandbox."""

from __future__ import annotations

import ast
import dataclasses
import os
import secrets
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rewardkit.verify import sandbox
from rewardkit.verify.sandbox import SandboxLimits, SandboxResult, python_layout, run_python

REPO = Path(__file__).resolve().parents[3]
README = REPO / "README.md"
PASSWD_ROOT = "root:x:0:0"  # the first line of any host's /etc/passwd starts so
# Every snippet starts by checking that it runs inside the sandbox (PID 2 of its own namespace, no
# /etc/passwd) and refuses otherwise, so that a broken sandbox fails these tests instead of running a fork
# loop, kill(-1) or writes to the host for real.
SAFETY = '''import os as _os
if _os.getpid() != 2 or _os.path.exists("/etc/passwd"):
    raise SystemExit("refusing to run a hostile snippet outside the sandbox")
'''
ATTEMPT = '''
def attempt(name, fn):
    try:
        value = fn()
    except BaseException as e:
        print(name, "FAILED", type(e).__name__, str(e)[:200])
    else:
        print(name, "DONE", repr(value)[:300])
'''


@dataclasses.dataclass
class Host:
    """What the host holds that the sandbox must neither read nor change."""

    secret: str
    canary: Path  # tmp_path/canary.txt, holds the secret
    tmp_canary: Path  # /tmp/rk-canary-*.txt, holds the secret
    must_not_exist: tuple[Path, ...]  # files the snippets try to create on the host
    python: str  # the sandboxed interpreter (the one file a snippet may run)

    @property
    def prelude(self) -> str:
        names = {"SECRET_NAME": "RK_SANDBOX_SECRET", "CANARY": str(self.canary), "TMP_CANARY": str(self.tmp_canary),
                 "NEW": [str(p) for p in self.must_not_exist], "PYTHON": self.python, "README": str(README),
                 "HOME": os.path.expanduser("~"), "PARENT": os.getpid()}
        return SAFETY + "".join(f"{k} = {v!r}\n" for k, v in names.items()) + ATTEMPT

    def assert_untouched(self, result: SandboxResult) -> None:
        assert self.secret not in result.output, result.output
        assert self.canary.read_text(encoding="utf-8") == self.secret
        assert self.tmp_canary.read_text(encoding="utf-8") == self.secret
        assert stat.S_IMODE(self.canary.stat().st_mode) == 0o644
        assert [p for p in self.must_not_exist if os.path.lexists(p)] == []


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Host]:
    token = secrets.token_hex(8)
    secret = f"rk-secret-{token}"
    monkeypatch.setenv("RK_SANDBOX_SECRET", secret)
    os.chmod(tmp_path, 0o755)
    canary, tmp_canary = tmp_path / "canary.txt", Path(f"/tmp/rk-canary-{token}.txt")
    for path in (canary, tmp_canary):
        path.write_text(secret, encoding="utf-8")
        os.chmod(path, 0o644)
    new = (tmp_path / "created.txt", Path(f"/tmp/rk-created-{token}"), Path(f"/dev/shm/rk-created-{token}"))
    yield Host(secret, canary, tmp_canary, new, python_layout(os.path.realpath(sys.executable)).python)
    for path in (tmp_canary, *new[1:]):
        if os.path.lexists(path):
            os.remove(path)


@pytest.fixture(params=[True, False], ids=["hook-on", "hook-off"])
def limits(request: pytest.FixtureRequest) -> SandboxLimits:
    return SandboxLimits(cpu_s=2, wall_s=10, guard=request.param)


def attack(host: Host, code: str, limits: SandboxLimits) -> dict[str, str]:
    """Run ``code`` after the prelude; the host must be untouched; returns ``{attempt: 'DONE ...' or
    'FAILED ...'}``."""
    result = run_python(host.prelude + code, limits=limits)
    host.assert_untouched(result)
    assert result.status == "ok" and result.report is not None and result.report["code_error"] is None, result
    outcomes = {}
    for line in result.output.splitlines():
        name, _, rest = line.partition(" ")
        outcomes[name] = rest
    return outcomes


def failed(outcomes: dict[str, str], *names: str) -> None:
    for name in names:
        assert outcomes[name].startswith("FAILED"), (name, outcomes[name])


# ------------------------------------------------------------------------------------ 0.1's escapes


def test_dir_fd_traversal(host: Host, limits: SandboxLimits) -> None:
    code = """import os
wd = os.open('.', os.O_RDONLY)
os.makedirs('a/b/c/d/e/f')
os.chdir('a/b/c/d/e/f')
up = '../' * 12
attempt('passwd', lambda: os.read(os.open(up + 'etc/passwd', os.O_RDONLY, dir_fd=wd), 4096))
attempt('canary', lambda: os.read(os.open(up + CANARY[1:], os.O_RDONLY, dir_fd=wd), 4096))
attempt('readme', lambda: os.read(os.open(up + README[1:], os.O_RDONLY, dir_fd=wd), 4096))
attempt('shm', lambda: os.open(up + NEW[2][1:], os.O_CREAT | os.O_WRONLY, 0o600, dir_fd=wd))
attempt('tmp', lambda: os.open(up + NEW[1][1:], os.O_CREAT | os.O_WRONLY, 0o600, dir_fd=wd))
attempt('root', lambda: sorted(os.listdir(os.open(up, os.O_RDONLY, dir_fd=wd))))
"""
    out = attack(host, code, limits)
    failed(out, "passwd", "canary", "readme", "shm")
    readme = README.read_text(encoding="utf-8")[:60]
    assert PASSWD_ROOT not in str(out) and readme not in str(out)
    if out["root"].startswith("DONE"):  # the sandbox's own root: no host folder beyond the interpreter's
        listing = set(ast.literal_eval(out["root"][5:]))
        layout = python_layout(host.python)
        tops = {p.split("/")[1] for p in (*layout.binds, *layout.libraries, layout.python)}
        assert listing <= tops | {"sandbox", "tmp", "dev", "proc"} and "etc" not in listing


def test_posixsubprocess_fork_exec_bypassing_the_hook(host: Host, limits: SandboxLimits) -> None:
    """0.1 let ``_posixsubprocess.fork_exec`` run /bin/sh; here it is reached without any audit event
    (subprocess's ``sys.audit`` replaced), so only the kernel can refuse the fork."""
    code = """import importlib.machinery as m, os, sys, _imp
ps = None
try:
    ps = _imp.create_builtin(m.ModuleSpec('_posixsubprocess', m.BuiltinImporter))
except Exception:
    pass
ps = ps or _imp.create_dynamic(m.PathFinder.find_spec('_posixsubprocess'))
sys.modules['_posixsubprocess'] = ps
import subprocess
class Quiet:
    def __getattr__(self, name):
        return getattr(sys, name)
    def audit(self, *args):
        pass
subprocess.sys = Quiet()
subprocess._posixsubprocess = ps
child = "open(%r, 'w').write('x'); open('/sandbox/child-ran', 'w')" % NEW[1]
attempt('fork_exec', lambda: subprocess.Popen([PYTHON, '-c', child]).wait())
attempt('child_ran', lambda: open('/sandbox/child-ran').read())
"""
    out = attack(host, code, limits)
    failed(out, "fork_exec", "child_ran")
    assert "PermissionError" in out["fork_exec"]  # EPERM from seccomp (or the hook's refusal)


def test_audit_hook_switched_off_through_gc(host: Host, limits: SandboxLimits) -> None:
    """Disable the hook the way 0.1's was (its reentrancy list, found through gc), then attack."""
    code = """import gc
hooks = [o for o in gc.get_objects() if getattr(o, '__name__', '') == 'hook' and getattr(o, '__closure__', None)]
for h in hooks:
    for cell in h.__closure__:
        if isinstance(cell.cell_contents, list):
            cell.cell_contents.append(1)
print('hooks', len(hooks))
attempt('passwd', lambda: open('/etc/passwd').read())
attempt('canary', lambda: open(CANARY).read())
attempt('write', lambda: open(CANARY, 'w').write('pwned'))
attempt('ctypes', lambda: __import__('ctypes'))
attempt('subprocess', lambda: __import__('subprocess').run([PYTHON, '-c', 'print(1)']))
attempt('socket', lambda: __import__('socket').create_connection(('127.0.0.1', 9), timeout=1))
"""
    out = attack(host, code, limits)
    assert out["hooks"] == ("1" if limits.guard else "0")
    failed(out, "passwd", "canary", "write", "ctypes", "subprocess", "socket")
    assert "FileNotFoundError" in out["passwd"]  # the hook is off: the file just is not there
    assert "ModuleNotFoundError" in out["ctypes"] and "PermissionError" in out["subprocess"]


@pytest.mark.parametrize("patch", [
    "os.path.realpath = lambda p, *a, **k: '/sandbox/fine'",
    "import builtins\nreal_isinstance = builtins.isinstance\nbuiltins.isinstance = lambda *a: True",
    "import sys, types\nfake = types.SimpleNamespace(**vars(os))\n"
    "fake.path = types.SimpleNamespace(**vars(os.path))\nfake.path.realpath = lambda p, *a, **k: '/sandbox/fine'\n"
    "sys.modules['__main__'].os = fake",
], ids=["realpath", "isinstance", "main-os"])
def test_monkeypatched_hook_helpers(host: Host, limits: SandboxLimits, patch: str) -> None:
    """0.1's hook approved reads and writes anywhere once its helpers were patched; the files are simply
    not in the sandbox."""
    code = f"""import os
{patch}
attempt('passwd', lambda: open('/etc/passwd').read())
attempt('canary', lambda: open(CANARY).read())
attempt('write', lambda: open(CANARY, 'w').write('pwned'))
attempt('create', lambda: open(NEW[0], 'w').write('pwned'))
attempt('readme', lambda: open(README).read())
if 'real_isinstance' in globals():
    builtins.isinstance = real_isinstance  # the bootstrap needs it to write its report
"""
    out = attack(host, code, limits)
    failed(out, "passwd", "canary", "write", "create", "readme")


def test_mknod_mkfifo_and_stat_of_host_paths(host: Host, limits: SandboxLimits) -> None:
    code = """import os, stat
attempt('fifo_host_tmp', lambda: os.mkfifo(NEW[1]))
attempt('fifo_here', lambda: os.mkfifo('fifo'))
attempt('mknod_fifo', lambda: os.mknod('node', stat.S_IFIFO | 0o600))
attempt('mknod_dev', lambda: os.mknod('mem', stat.S_IFCHR | 0o600, os.makedev(1, 1)))
attempt('mknod_tmp', lambda: os.mknod('/tmp/node', stat.S_IFREG | 0o600))
attempt('stat_canary', lambda: os.stat(CANARY))
attempt('stat_readme', lambda: os.stat(README))
attempt('stat_passwd', lambda: os.stat('/etc/passwd'))
attempt('exists', lambda: [p for p in (CANARY, README, '/etc', '/home', '/usr/bin/env') if os.path.exists(p)])
"""
    out = attack(host, code, limits)
    failed(out, "fifo_here", "mknod_fifo", "mknod_dev", "mknod_tmp", "stat_canary", "stat_readme", "stat_passwd")
    assert out["exists"] in ("DONE []",) or out["exists"].startswith("FAILED")


# ------------------------------------------------------------------------------------ files


def test_host_files_cannot_be_read(host: Host, limits: SandboxLimits) -> None:
    home = os.path.expanduser("~")
    home_names = sorted(os.listdir(home)) if os.path.isdir(home) else []
    code = """import glob, os
for name, path in [('canary', CANARY), ('tmp_canary', TMP_CANARY), ('passwd', '/etc/passwd'),
                   ('shadow', '/etc/shadow'), ('readme', README), ('proc_environ', '/proc/%d/environ' % PARENT),
                   ('self_environ', '/proc/self/environ'), ('init_environ', '/proc/1/environ')]:
    attempt(name, lambda: open(path, 'rb').read())
attempt('home', lambda: sorted(os.listdir(HOME)))
attempt('glob', lambda: glob.glob('/*/*'))
attempt('environ', lambda: dict(os.environ))
"""
    out = attack(host, code, limits)
    failed(out, "canary", "tmp_canary", "passwd", "shadow", "readme", "proc_environ")
    assert PASSWD_ROOT not in str(out) and README.read_text(encoding="utf-8")[:60] not in str(out)
    assert "RK_SANDBOX_SECRET" not in str(out)
    if out["home"].startswith("DONE"):  # only where the interpreter itself lives under the home folder
        assert Path(host.python).is_relative_to(home), out["home"]
        on_the_way = Path(host.python).relative_to(home).parts[0]
        assert ast.literal_eval(out["home"][5:]) == [on_the_way] and on_the_way in home_names


def test_host_paths_cannot_be_written(host: Host, limits: SandboxLimits, tmp_path: Path) -> None:
    code = f"""import os, shutil
attempt('overwrite', lambda: open(CANARY, 'w').write('pwned'))
attempt('append', lambda: open(TMP_CANARY, 'a').write('pwned'))
attempt('create', lambda: open(NEW[0], 'x').write('pwned'))
attempt('remove', lambda: os.remove(CANARY))
attempt('rename', lambda: os.rename(CANARY, NEW[0]))
attempt('chmod', lambda: os.chmod(CANARY, 0o777))
attempt('rmtree', lambda: shutil.rmtree({str(tmp_path)!r}))
attempt('symlink', lambda: os.symlink('/sandbox', NEW[0]))
attempt('lib', lambda: open(os.__file__, 'a').write('pwned'))
attempt('root', lambda: open('/pwned', 'w'))
attempt('dev', lambda: open('/dev/pwned', 'w'))
attempt('shm', lambda: open(NEW[2], 'w'))
attempt('tmp', lambda: open(NEW[1], 'w').write('only in the sandbox'))
"""
    out = attack(host, code, limits)
    failed(out, "overwrite", "create", "remove", "rename", "chmod", "rmtree", "symlink", "lib", "root", "dev", "shm")
    # /tmp is the sandbox's own tmpfs: these writes may succeed there, and host.assert_untouched (in
    # attack) saw the host's /tmp canary unchanged and no new host file
    for name in ("append", "tmp"):
        assert out[name].startswith("DONE") or out[name].startswith("FAILED PermissionError"), out[name]


# ------------------------------------------------------------------------------------ processes


def test_no_process_by_any_route(host: Host, limits: SandboxLimits) -> None:
    code = """import os, pty, subprocess
run_me = ['-c', "open('/sandbox/child-ran', 'w'); open(%r, 'w')" % NEW[1]]
attempt('subprocess', lambda: subprocess.run([PYTHON, *run_me]))
attempt('system', lambda: os.system(PYTHON + ' ' + ' '.join(repr(a) for a in run_me)))
attempt('posix_spawn', lambda: os.waitpid(os.posix_spawn(PYTHON, ['python', *run_me], {}), 0))
attempt('spawnv', lambda: os.spawnv(os.P_WAIT, PYTHON, ['python', *run_me]))
def fork_exec():
    pid = os.fork()
    if pid == 0:
        os.execv(PYTHON, ['python', *run_me])
    return os.waitpid(pid, 0)
attempt('fork_exec', fork_exec)
attempt('forkpty', lambda: pty.fork())
attempt('child_ran', lambda: open('/sandbox/child-ran').read())
"""
    out = attack(host, code, limits)
    failed(out, "subprocess", "posix_spawn", "spawnv", "fork_exec", "forkpty", "child_ran")
    # os.system reports a failed spawn as exit status 127 (32512), not an exception
    assert out["system"] in ("DONE 32512",) or out["system"].startswith("FAILED PermissionError")


def test_fork_bomb(host: Host, limits: SandboxLimits) -> None:
    code = """import os
def count():
    n = 0
    for _ in range(2000):
        try:
            pid = os.fork()
        except OSError:
            continue
        if pid == 0:
            os._exit(0)
        n += 1
    return n
attempt('forks', count)
"""
    out = attack(host, code, limits)
    assert out["forks"] == "DONE 0"  # not one process: seccomp (or the hook) refuses every fork


def test_thread_bomb_is_bounded(host: Host, limits: SandboxLimits) -> None:
    code = """import threading, time
def bomb():
    started = 0
    try:
        for _ in range(10000):
            threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
            started += 1
    except RuntimeError:
        pass
    return started
attempt('threads', bomb)
"""
    out = attack(host, code, limits)
    started = int(out["threads"].split()[1])
    assert 1 <= started < 10000  # RLIMIT_NPROC (as a non-root host uid) or the address space stops it


def test_signals_and_proc_of_host_processes(host: Host, limits: SandboxLimits) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                               env={"RK_SANDBOX_SECRET": host.secret})
    try:
        code = f"""import os, signal
SLEEPER = {sleeper.pid}
attempt('environ', lambda: open('/proc/%d/environ' % SLEEPER, 'rb').read())
attempt('cmdline', lambda: open('/proc/%d/cmdline' % SLEEPER, 'rb').read())
attempt('kill_sleeper', lambda: os.kill(SLEEPER, signal.SIGKILL))
attempt('kill_parent', lambda: os.kill(PARENT, signal.SIGKILL))
attempt('killpg_parent', lambda: os.killpg(os.getpgid(PARENT), signal.SIGKILL))
attempt('pids', lambda: sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))
attempt('init', lambda: open('/proc/1/cmdline', 'rb').read())
attempt('kill_init', lambda: os.kill(1, signal.SIGKILL))
attempt('kill_all', lambda: os.kill(-1, signal.SIGKILL))
"""
        out = attack(host, code, limits)
        failed(out, "environ", "cmdline", "kill_sleeper", "kill_parent", "killpg_parent")
        if out["pids"].startswith("DONE"):  # its own PID namespace: bwrap's init and itself
            assert ast.literal_eval(out["pids"][5:]) == [1, 2]
        # its PID 1 is bwrap's init, not the host's (which the kernel keeps from signals of its namespace)
        assert out["init"].startswith("FAILED") or "bwrap" in out["init"]
        assert sleeper.poll() is None  # alive
    finally:
        sleeper.kill()
        sleeper.wait()


def test_proc_and_sysctls_are_read_only(host: Host, limits: SandboxLimits) -> None:
    """Where the sandbox's uid is the host's root (a root parent whose interpreter only root can read),
    sysctls check that uid, not a capability: kernel.core_pattern or kernel.modprobe would run a host
    program as root. Each file is only opened for writing (never written) and closed."""
    code = """import os
def open_for_writing(path):
    os.close(os.open(path, os.O_WRONLY))
for path in ('/proc/sys/kernel/core_pattern', '/proc/sys/kernel/modprobe', '/proc/sys/vm/drop_caches',
             '/proc/sys/kernel/hostname', '/proc/sysrq-trigger', '/proc/self/mem', '/proc/self/oom_score_adj',
             '/proc/self/uid_map', '/proc/self/attr/current'):
    attempt(path, lambda: open_for_writing(path))
"""
    out = attack(host, code, limits)
    assert out and all(outcome.startswith("FAILED") for outcome in out.values()), out


# ------------------------------------------------------------------------------------ network


def test_no_socket_reaches_the_host(host: Host, limits: SandboxLimits, tmp_path: Path) -> None:
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    unix_path, abstract = tmp_path / "s.sock", f"\0rk-sandbox-{secrets.token_hex(6)}"
    unix, unix_abstract = socket.socket(socket.AF_UNIX), socket.socket(socket.AF_UNIX)
    unix.bind(str(unix_path))
    unix_abstract.bind(abstract)
    listeners = (tcp, unix, unix_abstract)
    for s in listeners:
        s.listen(4)
        s.setblocking(False)
    try:
        code = f"""import socket
def connect(family, address):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect(address)
    return 'connected'
attempt('inet', lambda: connect(socket.AF_INET, ('127.0.0.1', {tcp.getsockname()[1]})))
attempt('inet_out', lambda: connect(socket.AF_INET, ('1.1.1.1', 53)))
attempt('inet6', lambda: connect(socket.AF_INET6, ('::1', {tcp.getsockname()[1]})))
attempt('unix_path', lambda: connect(socket.AF_UNIX, {str(unix_path)!r}))
attempt('unix_abstract', lambda: connect(socket.AF_UNIX, {abstract!r}))
attempt('netlink', lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).bind((0, 0)))
attempt('packet', lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0))
attempt('udp', lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', 9)))
"""
        out = attack(host, code, limits)
        failed(out, "inet", "inet_out", "inet6", "unix_path", "unix_abstract", "netlink", "packet", "udp")
        for s in listeners:
            with pytest.raises(BlockingIOError):
                s.accept()  # nobody connected
    finally:
        for s in listeners:
            s.close()


# ------------------------------------------------------------------------------------ native code


def test_ctypes_cannot_be_loaded(host: Host, limits: SandboxLimits) -> None:
    code = """import importlib.machinery as m, _imp
attempt('import', lambda: __import__('ctypes'))
attempt('loader', lambda: _imp.create_dynamic(m.PathFinder.find_spec('_ctypes')))
attempt('testcapi', lambda: __import__('_testcapi'))
"""
    out = attack(host, code, limits)
    failed(out, "import", "loader", "testcapi")


def test_raw_system_calls_are_refused_by_seccomp(host: Host) -> None:
    """With ctypes let in (a private layout, hook off), call the kernel directly: the seccomp filter
    refuses what no snippet needs, whatever Python's own modules would allow."""
    layout = python_layout(host.python, hidden_modules=())
    plan = dataclasses.replace(sandbox._plan(sys.executable), layout=layout)
    code = """import ctypes, errno, platform
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
x86 = platform.machine() == 'x86_64'
calls = {
    'fork': (57, 0) if x86 else None, 'vfork': (58, 0) if x86 else None,
    'clone_process': ((56 if x86 else 220), 17), 'clone_userns': ((56 if x86 else 220), 0x10000000 | 0x3D0F00),
    'clone3': (435, 0), 'execveat': ((322 if x86 else 281), -100), 'ptrace': ((101 if x86 else 117), 0),
    'mount': ((165 if x86 else 40), 0), 'umount2': ((166 if x86 else 39), 0), 'unshare': ((272 if x86 else 97), 0x10000000),
    'setns': ((308 if x86 else 268), 0), 'keyctl': ((250 if x86 else 219), 0), 'bpf': ((321 if x86 else 280), 0),
    'perf_event_open': ((298 if x86 else 241), 0), 'userfaultfd': ((323 if x86 else 282), 0),
    'kexec_load': ((246 if x86 else 104), 0), 'init_module': ((175 if x86 else 105), 0),
    'mknodat': ((259 if x86 else 33), -100), 'io_uring_setup': (425, 0), 'memfd_create': ((319 if x86 else 279), 0),
    'socket_inet': ((41 if x86 else 198), 2), 'socket_packet': ((41 if x86 else 198), 17),
    'x32_getpid': ((39 | 0x40000000) if x86 else None, 0),
}
for name, call in calls.items():
    if call is None or call[0] is None:
        print(name, 'n/a')
        continue
    ctypes.set_errno(0)
    ret = libc.syscall(call[0], ctypes.c_long(call[1]), 0, 0, 0, 0)
    print(name, ret, errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno()))
print('socket_unix', libc.syscall((41 if x86 else 198), 1, 1, 0) >= 0)
"""
    result = sandbox._run_sandboxed(host.prelude + code, (), SandboxLimits(cpu_s=2, wall_s=10, guard=False), plan)
    host.assert_untouched(result)
    assert result.status == "ok" and result.report and result.report["code_error"] is None, result
    out = dict(line.split(" ", 1) for line in result.output.splitlines())
    for name, value in out.items():
        if name == "clone3":
            assert value == "-1 ENOSYS"
        elif name == "socket_unix":
            assert value == "True"
        elif value != "n/a":
            assert value == "-1 EPERM", (name, value)


# ------------------------------------------------------------------------------------ resources


def test_memory_cpu_output_and_disk_bombs(host: Host, limits: SandboxLimits) -> None:
    memory = run_python(SAFETY + "x = []\nwhile True:\n    x.append(bytearray(1 << 24))", limits=limits)
    assert memory.report and str(memory.report["code_error"]).startswith("MemoryError")
    cpu = run_python(SAFETY + "while True:\n    pass", limits=dataclasses.replace(limits, cpu_s=1))
    assert cpu.status == "cpu_limit"
    output = run_python(SAFETY + "while True:\n    print('x' * 4096)",
                        limits=dataclasses.replace(limits, output_bytes=50_000))
    assert output.status == "output_limit" and len(output.output) <= 50_000
    disk = run_python(SAFETY + "n = 0\nwhile True:\n    open('f%d' % n, 'wb').write(b'z' * (1 << 20))\n    n += 1",
                      limits=dataclasses.replace(limits, file_mb=4))
    assert disk.report and "No space left on device" in str(disk.report["code_error"])
    for result in (memory, cpu, output, disk):
        host.assert_untouched(result)
