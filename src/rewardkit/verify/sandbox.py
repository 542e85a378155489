"""Run untrusted Python (a model's answer to a coding task) in a sandbox whose walls are the kernel's.

Code RL optimises a policy against the reward, so the code it writes will probe whatever runs it. The
boundary is therefore the operating system, set up by bubblewrap (``bwrap``); each layer is tested
against hostile snippets in ``tests/unit/verify/test_sandbox*.py``, with the audit hook on and off:

1. **A mount namespace with almost nothing in it**: the interpreter binary, the directories on its
   ``sys.path`` (the standard library; a ``site-packages`` inside them is covered by an empty read-only
   tmpfs) and the shared libraries they load, all read-only at their host paths; its own ``/proc`` and a
   minimal ``/dev``; an empty tmpfs of ``file_mb`` MiB as working folder (``/sandbox``) and another as
   ``/tmp``. The root, ``/dev`` and ``/proc`` are read-only. No other host path exists in there: not ``/etc``, not
   the repository, not a home folder. ``ctypes`` and CPython's test extensions are hidden (bound to
   ``/dev/null``), so they cannot be imported.
2. **New user, PID, network, IPC, UTS (and cgroup) namespaces**: the code runs as uid/gid 65534 with no
   capabilities and ``no_new_privs``; it sees only its own processes; its network has only a loopback
   that is down. As root, bwrap itself runs under a fresh random host uid when the interpreter can be
   read by any user (``isolation()["fresh_host_uid"]``), so even a kernel escape lands unprivileged.
3. **A seccomp filter** (classic BPF built by :func:`seccomp_filter`, handed to ``bwrap --seccomp``)
   refuses creating processes (``fork``, ``vfork``, ``clone`` without ``CLONE_THREAD`` or with namespace
   flags; ``clone3`` answers ``ENOSYS`` so threads fall back to ``clone``), ``execveat``, sockets other
   than ``AF_UNIX``, ``mknod``, ``ptrace``, mounts, namespaces, keyrings, ``bpf``, ``perf_event_open``,
   ``userfaultfd``, ``io_uring``, modules, ``kexec``, ``memfd_create`` and other system calls that a
   test snippet never needs. ``execve`` stays allowed because bwrap installs the filter just before it
   runs the interpreter; with no way to start a process, it can only replace the sandboxed interpreter
   by one of the few executables in the namespace, under the same walls.
4. **Resource limits**, soft = hard, set before the code runs: CPU seconds, address space, size of a
   written file, threads (``RLIMIT_NPROC``), open files, no core dumps. The parent kills the sandbox past
   ``output_bytes`` of output and at the wall clock.
5. **An empty environment** and ``python -I -S -B``.
6. **An audit hook**, defence in depth only: it refuses sockets, processes, ``ctypes``, signals and
   file access outside the working folder, ``/tmp`` and the standard library, so most hostile snippets
   fail early with a clear message. It runs in the same interpreter as the code and can be switched off
   by it; nothing above depends on it.

Where bwrap or user namespaces are missing, :func:`run_python` refuses with :class:`UnsupportedError`
unless ``SandboxLimits(allow_unsandboxed=True)``, which runs the code with only layers 4-6 and prints a
warning on stderr every time.

CPU time past the limit ends the run as ``cpu_limit``, the wall clock as ``timeout``, too much output as
``output_limit``.

What it does not do: the tests run in the same interpreter as the solution, so a solution written to
fool the checker (rebinding ``AssertionError``, or reading the results nonce from the checker's frames)
can fake a pass. The sandbox protects the host; it does not make the reward honest.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import platform
import re
import secrets
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rewardkit.errors import OptionError, UnsupportedError

WORKDIR = "/sandbox"  # the code's working folder inside the sandbox (its own tmpfs)
SANDBOX_UID = 65534  # the code's uid and gid inside the sandbox ("nobody")
INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`, Fedora: `dnf install "
                "bubblewrap`, or run scripts/setup.sh) and allow unprivileged user namespaces "
                "(/proc/sys/user/max_user_namespaces > 0; on Ubuntu 24.04 also "
                "kernel.apparmor_restrict_unprivileged_userns=0)")

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


def _guard(root, scratch):
    write_roots = [root, *scratch]
    read_roots = [*write_roots, *(os.path.realpath(p) for p in sys.path if p)]
    devices = {"/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"}
    banned = {"os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "subprocess.Popen",
              "os.kill", "os.killpg", "resource.setrlimit", "resource.prlimit", "sys.remote_exec", "os.startfile"}
    modules = {"ctypes", "_ctypes", "_xxsubinterpreters"}  # not _posixsubprocess: asyncio imports subprocess
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
        if event == "socket.__new__" and args[1] == 1:  # AF_UNIX: asyncio's self-pipe is a socketpair
            return
        if event in banned or event.startswith(("socket.", "ctypes.", "_winapi.", "winreg.")):
            deny(event)
        if event == "import" and args[0].split(".")[0] in modules:
            deny("import " + args[0])
        if event in writes and not all(inside(a, write_roots) for a in args[:2] if isinstance(a, (str, bytes))):
            deny(event + " outside the working directory")
        if event in ("os.listdir", "os.scandir") and args and not inside(args[0] if args[0] else ".", read_roots):
            deny("listing outside the working directory")
        if event == "open":
            path, mode, flags = (list(args) + [None, None])[:3]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & wflags)
            if not inside(path, write_roots if writing else read_roots):
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
        _guard(os.path.realpath(os.getcwd()), payload["scratch"])
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
    any written file and of each of the two tmpfs (working folder, ``/tmp``; MiB), threads of the sandbox
    (it cannot start processes at all), open files; ``guard`` keeps the audit-hook layer (turn it off
    only to test the OS layers alone); ``python`` is the interpreter that runs the code (its standard
    library only); ``allow_unsandboxed`` runs the code without the OS layers where bubblewrap or user
    namespaces are missing, loudly — only for code you trust (CLI: ``--unsafe-no-sandbox``)."""

    cpu_s: int = 5
    wall_s: float = 10.0
    memory_mb: int = 512
    output_bytes: int = 64_000
    file_mb: int = 16
    processes: int = 8
    open_files: int = 64
    guard: bool = True
    python: str = field(default_factory=lambda: sys.executable)
    allow_unsandboxed: bool = False

    def __post_init__(self) -> None:
        if min(self.cpu_s, self.memory_mb, self.output_bytes, self.file_mb, self.processes, self.open_files) < 1:
            raise OptionError("every sandbox limit must be >= 1")
        if self.wall_s <= 0:
            raise OptionError("wall_s must be > 0")


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


# ------------------------------------------------------------------------------------------ seccomp

# System calls the filter refuses with EPERM, with their numbers on x86_64 and aarch64 (None: the
# architecture has no such call), from the kernel's uapi headers asm/unistd_64.h and asm-generic/unistd.h.
DENIED_SYSCALLS: dict[str, tuple[int, int | None]] = {
    # starting programs and processes (clone and clone3 are handled apart)
    "fork": (57, None), "vfork": (58, None), "execveat": (322, 281),
    # looking into or controlling other processes
    "ptrace": (101, 117), "process_vm_readv": (310, 270), "process_vm_writev": (311, 271), "kcmp": (312, 272),
    "pidfd_getfd": (438, 438), "perf_event_open": (298, 241),
    # mounts, namespaces, file handles
    "mount": (165, 40), "umount2": (166, 39), "pivot_root": (155, 41), "chroot": (161, 51),
    "unshare": (272, 97), "setns": (308, 268), "open_tree": (428, 428), "move_mount": (429, 429),
    "fsopen": (430, 430), "fsconfig": (431, 431), "fsmount": (432, 432), "fspick": (433, 433),
    "mount_setattr": (442, 442), "name_to_handle_at": (303, 264), "open_by_handle_at": (304, 265),
    # kernel objects and interfaces a test never needs
    "keyctl": (250, 219), "add_key": (248, 217), "request_key": (249, 218), "bpf": (321, 280),
    "userfaultfd": (323, 282), "io_uring_setup": (425, 425), "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427), "memfd_create": (319, 279), "personality": (135, 92),
    "lookup_dcookie": (212, 18), "uselib": (134, None),
    # the machine: modules, kexec, reboot, swap, clock, names, quotas, logs, I/O ports
    "kexec_load": (246, 104), "kexec_file_load": (320, 294), "init_module": (175, 105),
    "finit_module": (313, 273), "delete_module": (176, 106), "reboot": (169, 142), "swapon": (167, 224),
    "swapoff": (168, 225), "acct": (163, 89), "syslog": (103, 116), "settimeofday": (164, 170),
    "clock_settime": (227, 112), "clock_adjtime": (305, 266), "adjtimex": (159, 171),
    "sethostname": (170, 161), "setdomainname": (171, 162), "quotactl": (179, 60), "vhangup": (153, 58),
    "iopl": (172, None), "ioperm": (173, None),
    # device files
    "mknod": (133, None), "mknodat": (259, 33),
}
# (AUDIT_ARCH_* value, index into DENIED_SYSCALLS' pairs, clone, clone3, socket)
_ARCHES = {"x86_64": (0xC000003E, 0, 56, 435, 41), "aarch64": (0xC00000B7, 1, 220, 435, 198)}
_X32_BIT = 0x40000000  # x86_64: syscall numbers of the x32 ABI carry this bit
_CLONE_THREAD = 0x00010000
_CLONE_NAMESPACES = 0x7E020000  # NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
_AF_UNIX = 1
# classic BPF opcodes (linux/bpf_common.h) and seccomp return values (linux/seccomp.h)
_LD_ABS, _JEQ, _JSET, _RET = 0x20, 0x15, 0x45, 0x06
RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000
# offsets in struct seccomp_data: nr, arch, then 64-bit args (their low halves: little-endian only)
_NR, _ARCH, _ARG0 = 0, 4, 16


@functools.lru_cache(maxsize=4)
def seccomp_filter(machine: str | None = None) -> bytes:
    """The sandbox's seccomp program for ``machine`` (``platform.machine()`` by default): a classic-BPF
    ``struct sock_filter[]`` (8 bytes per instruction), as ``bwrap --seccomp FD`` reads it.

    Other architectures' system calls kill the process; the calls in :data:`DENIED_SYSCALLS`, ``clone``
    without ``CLONE_THREAD`` or with a namespace flag, and ``socket`` of a family other than ``AF_UNIX``
    fail with EPERM; ``clone3`` fails with ENOSYS (glibc then creates threads with ``clone``, whose flags
    the filter can read); everything else is allowed."""
    machine = machine or platform.machine()
    if machine not in _ARCHES:
        raise UnsupportedError(f"the code sandbox has no seccomp filter for the {machine!r} architecture "
                               f"(supported: {', '.join(_ARCHES)})")
    audit_arch, column, clone, clone3, socket = _ARCHES[machine]
    denied = sorted({pair[column] for pair in DENIED_SYSCALLS.values() if pair[column] is not None})
    prog: list[tuple[int, int | str, int | str, int] | str] = [
        (_LD_ABS, 0, 0, _ARCH), (_JEQ, 0, "kill", audit_arch), (_LD_ABS, 0, 0, _NR)]
    if machine == "x86_64":
        prog.append((_JSET, "deny", 0, _X32_BIT))
    prog += [(_JEQ, "enosys", 0, clone3), (_JEQ, "clone", 0, clone), (_JEQ, "socket", 0, socket)]
    prog += [(_JEQ, "deny", 0, nr) for nr in denied]
    prog += [(_RET, 0, 0, RET_ALLOW),  # jumps only go forward: the blocks below end in their own returns
             "clone", (_LD_ABS, 0, 0, _ARG0), (_JSET, 0, "deny", _CLONE_THREAD),
             (_JSET, "deny", "allow", _CLONE_NAMESPACES),
             "socket", (_LD_ABS, 0, 0, _ARG0), (_JEQ, "allow", "deny", _AF_UNIX),
             "allow", (_RET, 0, 0, RET_ALLOW),
             "deny", (_RET, 0, 0, RET_ERRNO | errno.EPERM),
             "enosys", (_RET, 0, 0, RET_ERRNO | errno.ENOSYS),
             "kill", (_RET, 0, 0, RET_KILL_PROCESS)]
    return _assemble(prog)


def _assemble(prog: Sequence[tuple[int, int | str, int | str, int] | str]) -> bytes:
    """Resolve label names (strings in the list) to forward jump offsets and pack the instructions."""
    where: dict[str, int] = {}
    for item in prog:
        if isinstance(item, str):
            where[item] = sum(1 for x in prog[: prog.index(item)] if not isinstance(x, str))
    out, index = [], 0
    for item in prog:
        if isinstance(item, str):
            continue
        code, jt, jf, k = item
        jumps = [where[j] - index - 1 if isinstance(j, str) else j for j in (jt, jf)]
        if not all(0 <= j <= 255 for j in jumps):
            raise AssertionError(f"seccomp jump out of range at instruction {index}")
        out.append(struct.pack("<HBBI", code, jumps[0], jumps[1], k))
        index += 1
    return b"".join(out)


# ------------------------------------------------------------------------------------------ layout

# Extension modules hidden from the code: raw memory access (ctypes, CPython's test helpers).
HIDDEN_MODULES = ("_ctypes", "_ctypes_test", "_testcapi", "_testinternalcapi")
# Extension modules whose shared libraries the sandbox does not provide, so they fail to import: GUI,
# terminal, NIS and dbm bindings no test snippet needs; their ~25 libraries (X11, Tk, ncurses, Kerberos)
# would cost a bind mount each on every run.
UNSUPPORTED_MODULES = ("_tkinter", "_curses", "_curses_panel", "readline", "nis", "_dbm", "_gdbm", "ossaudiodev")

# Run by the interpreter itself (``-I -S``, argv[1:] = the modules to hide): where it imports from.
_PROBE = r"""
import importlib.machinery as m, json, os, sys, sysconfig
specs = [m.PathFinder.find_spec(n) for n in sys.argv[1:]]
print(json.dumps({"executable": os.path.realpath(getattr(sys, "_base_executable", "") or sys.executable),
                  "path": [os.path.realpath(p) for p in sys.path if os.path.isdir(p)],
                  "site": [os.path.realpath(sysconfig.get_path(k)) for k in ("purelib", "platlib")],
                  "hidden": [os.path.realpath(s.origin) for s in specs if s is not None and s.origin]}))
"""


@dataclass(frozen=True)
class Layout:
    """What the sandbox shows of the host, all read-only at the same paths: the interpreter, the
    directories it imports from (``binds``), the shared libraries they load (``libraries``); files bound
    to ``/dev/null`` (``hidden``) and directories covered by an empty tmpfs (``covered``)."""

    python: str
    binds: tuple[str, ...]
    libraries: tuple[str, ...]
    hidden: tuple[str, ...]
    covered: tuple[str, ...]

    @property
    def library_path(self) -> str:
        """``LD_LIBRARY_PATH`` for the loader (the sandbox has no ``/etc/ld.so.cache``)."""
        return ":".join(dict.fromkeys(os.path.dirname(lib) for lib in self.libraries))


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def python_layout(python: str, hidden_modules: tuple[str, ...] = HIDDEN_MODULES) -> Layout:
    """Ask ``python`` (resolved to the real interpreter behind a virtualenv) where its standard library
    and extension modules are, and ``ldd`` which shared libraries they need (but for
    :data:`UNSUPPORTED_MODULES`); ``hidden_modules`` are left out (their files bound to ``/dev/null``)."""
    return _layout(os.path.realpath(python), tuple(hidden_modules))


@functools.lru_cache(maxsize=8)
def _layout(exe: str, hidden_modules: tuple[str, ...]) -> Layout:
    info = _probe_python(exe, hidden_modules)
    if info["executable"] != exe:
        exe = info["executable"]
        info = _probe_python(exe, hidden_modules)
    binds = tuple(p for i, p in enumerate(info["path"]) if not _under(p, info["path"][:i]))
    hidden = tuple(h for h in info["hidden"] if _under(h, binds))
    covered = tuple(sorted({s for s in info["site"] if os.path.isdir(s) and _under(s, binds)}))
    modules = [os.path.join(d, f) for d in info["path"] for f in _so_files(d)
               if os.path.join(d, f) not in hidden and f.split(".")[0] not in UNSUPPORTED_MODULES]
    libraries = tuple(lib for lib in _shared_libraries([exe, *modules]) if not _under(lib, binds))
    return Layout(exe, binds, libraries, hidden, covered)


def _probe_python(exe: str, hidden_modules: Sequence[str]) -> dict[str, Any]:
    out = subprocess.run([exe, "-I", "-S", "-c", _PROBE, *hidden_modules], capture_output=True, text=True,
                         timeout=60, env={}, check=True)
    return json.loads(out.stdout)


def _so_files(directory: str) -> list[str]:
    """Extension modules directly in ``directory`` (lib-dynload; the stdlib's own folder has none)."""
    return sorted(f for f in os.listdir(directory) if f.endswith(".so") and os.path.isfile(os.path.join(directory, f)))


def _shared_libraries(files: Sequence[str]) -> list[str]:
    """Every shared library (and the dynamic loader) that ``files`` load, by ``ldd``; plus libgcc_s,
    which glibc opens itself when a thread exits."""
    out = subprocess.run(["ldd", *files], capture_output=True, text=True, timeout=120).stdout
    libs = set(re.findall(r"^\s+(?:\S+ => )?(/\S+) \(0x", out, flags=re.MULTILINE))
    libc = next((lib for lib in libs if os.path.basename(lib) == "libc.so.6"), None)
    if libc and os.path.exists(os.path.join(os.path.dirname(libc), "libgcc_s.so.1")):
        libs.add(os.path.join(os.path.dirname(libc), "libgcc_s.so.1"))
    return sorted(libs - set(files))


# ------------------------------------------------------------------------------------------ launching


@dataclass(frozen=True)
class _Plan:
    """How this machine runs sandboxes for one interpreter: ``bwrap`` and ``layout`` when it can (with
    ``fresh_host_uid`` when a root parent starts bwrap as a random unprivileged host uid), else ``problem``."""

    bwrap: str | None
    layout: Layout | None
    fresh_host_uid: bool = False
    problem: str = ""


def bwrap_argv(bwrap: str, layout: Layout, limits: SandboxLimits, seccomp_fd: int) -> list[str]:
    """The bwrap command line that runs the bootstrap under every layer (see the module docstring)."""
    argv = [bwrap, "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--cap-drop", "ALL",
            "--die-with-parent", "--new-session", "--clearenv", "--proc", "/proc", "--dev", "/dev"]
    for path in ("/tmp", WORKDIR):
        argv += ["--perms", "0700", "--size", str(limits.file_mb << 20), "--tmpfs", path]
    for path in (*layout.binds, *layout.libraries, layout.python):
        argv += ["--ro-bind", path, path]
    for path in layout.hidden:
        argv += ["--ro-bind", "/dev/null", path]
    for path in layout.covered:
        argv += ["--size", "4096", "--tmpfs", path, "--remount-ro", path]
    # /proc read-only: where the sandbox's uid is the host's root (a root parent whose interpreter other
    # users cannot read), sysctls such as kernel.core_pattern check the uid, not a capability
    argv += ["--remount-ro", "/proc", "--remount-ro", "/dev", "--remount-ro", "/",
             "--setenv", "LD_LIBRARY_PATH", layout.library_path,
             "--chdir", WORKDIR, "--seccomp", str(seccomp_fd),
             "--", layout.python, "-I", "-S", "-B", "-c", BOOTSTRAP]
    return argv


@functools.lru_cache(maxsize=8)
def _plan(python: str) -> _Plan:
    """Find bwrap, the interpreter's layout, and start one sandbox to see that this machine allows it
    (as root: first under a fresh host uid, then as root)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return _Plan(None, None, problem="bubblewrap (bwrap) is not installed")
    try:
        seccomp_filter()
        layout = python_layout(python)
    except (UnsupportedError, OSError, subprocess.SubprocessError, ValueError) as e:
        return _Plan(bwrap, None, problem=f"cannot prepare the sandbox for {python}: {e}")
    tries = [True, False] if os.geteuid() == 0 else [False]
    problem = ""
    for fresh in tries:
        plan = _Plan(bwrap, layout, fresh_host_uid=fresh)
        probe = _run_sandboxed("pass", (), SandboxLimits(python=python, cpu_s=10, wall_s=30), plan)
        if probe.report is not None and probe.report.get("code_error") is None:
            if os.geteuid() == 0 and not fresh:
                warnings.warn(f"rewardkit sandbox: as root with an interpreter other users cannot read "
                              f"({layout.python}), the sandbox's uid is the host's root inside a user namespace "
                              "without capabilities; install Python where every user can read it to run each "
                              "sandbox under a fresh unprivileged host uid", RuntimeWarning, stacklevel=3)
            return plan
        problem = probe.output.strip().splitlines()[-1:] or [f"exit status {probe.returncode}"]
        problem = f"bwrap could not start a sandbox ({problem[0]})"
    return _Plan(bwrap, None, problem=problem)


def isolation(python: str | None = None) -> dict[str, bool]:
    """Which layers sandboxes of ``python`` (default: this interpreter) get on this machine: ``bwrap``
    (and with it ``namespaces``, ``tmpfs``, ``uid``, ``seccomp``) and ``fresh_host_uid`` (as root, bwrap
    runs as a random unprivileged host uid: the interpreter is readable by every user)."""
    plan = _plan(python or sys.executable)
    ok = plan.layout is not None
    return {"bwrap": ok, "namespaces": ok, "tmpfs": ok, "uid": ok, "seccomp": ok,
            "fresh_host_uid": ok and plan.fresh_host_uid}


def run_python(code: str, *, tests: Sequence[str] = (), limits: SandboxLimits | None = None) -> SandboxResult:
    """Run ``code`` and then each of ``tests`` (Python source run in the code's namespace) in the sandbox.

    The report counts the tests that ran without an exception (``passed`` of ``total``) and says whether
    ``code`` itself raised (``code_error``). Raises :class:`UnsupportedError` where the sandbox cannot run
    (no bubblewrap, no user namespaces) unless ``limits.allow_unsandboxed``."""
    limits = limits or SandboxLimits()
    plan = _plan(limits.python)
    if plan.layout is not None:
        return _run_sandboxed(code, tests, limits, plan)
    if not limits.allow_unsandboxed:
        raise UnsupportedError(f"refusing to run untrusted code without the sandbox: {plan.problem}. To fix it, "
                               f"{INSTALL_HINT}. Only for code you trust: SandboxLimits(allow_unsandboxed=True) "
                               "(CLI: --unsafe-no-sandbox).")
    print(f"rewardkit: WARNING: running code WITHOUT the sandbox ({plan.problem}): it can read and change "
          "your files, use the network and start programs (allow_unsandboxed=True)", file=sys.stderr, flush=True)
    return _run_unsandboxed(code, tests, limits)


def _payload(code: str, tests: Sequence[str], limits: SandboxLimits, nonce: str, scratch: list[str]) -> bytes:
    return json.dumps({"code": code, "tests": list(tests), "nonce": nonce, "guard": limits.guard, "scratch": scratch,
                       "limits": {"cpu_s": limits.cpu_s, "memory_mb": limits.memory_mb, "file_mb": limits.file_mb,
                                  "processes": limits.processes, "open_files": limits.open_files}}).encode()


def _run_sandboxed(code: str, tests: Sequence[str], limits: SandboxLimits, plan: _Plan) -> SandboxResult:
    """One run under bwrap; the seccomp program travels on a pipe."""
    assert plan.bwrap is not None and plan.layout is not None
    nonce = secrets.token_hex(16)
    host_uid = 100_000 + secrets.randbelow(1_000_000_000) if plan.fresh_host_uid else None
    read_end, write_end = os.pipe()
    try:
        with os.fdopen(write_end, "wb") as pipe:  # a few hundred bytes: fits the pipe's buffer
            pipe.write(seccomp_filter())
        t0 = time.perf_counter()
        proc = subprocess.Popen(bwrap_argv(plan.bwrap, plan.layout, limits, read_end), env={}, cwd="/",
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                pass_fds=(read_end,), start_new_session=True,
                                user=host_uid, group=host_uid, extra_groups=[] if host_uid else None)
    finally:
        os.close(read_end)
    status, output = _communicate(proc, _payload(code, tests, limits, nonce, ["/tmp"]), limits, t0)
    return _result(status, proc.returncode, output, nonce, time.perf_counter() - t0)


def _run_unsandboxed(code: str, tests: Sequence[str], limits: SandboxLimits) -> SandboxResult:
    """The override: limits, empty environment and audit hook only, in a temporary folder."""
    nonce = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="rk-unsandboxed-") as workdir:
        t0 = time.perf_counter()
        proc = subprocess.Popen([limits.python, "-I", "-S", "-B", "-c", BOOTSTRAP], cwd=workdir, env={},
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        status, output = _communicate(proc, _payload(code, tests, limits, nonce, []), limits, t0)
    return _result(status, proc.returncode, output, nonce, time.perf_counter() - t0)


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
    """SIGKILL the sandbox's process group: bwrap and the namespace's init, whose death kills every
    process in the namespace."""
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


# ------------------------------------------------------------------------------------------ checking


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
    blocks = re.findall(r"```(?:python|py|python3)?[ \t]*\n(.*?)```", response, flags=re.DOTALL | re.IGNORECASE)
    return max(blocks, key=len) if blocks else response


def check_python(response: str, tests: Sequence[str] | str, *, limits: SandboxLimits | None = None) -> PythonCheck:
    """Run the code in ``response`` and ``tests`` (one source string per test, or one string of asserts
    counted as a single test) in the sandbox."""
    test_list = [tests] if isinstance(tests, str) else list(tests)
    if not test_list:
        raise OptionError("check_python needs at least one test")
    run = run_python(extract_code(response), tests=test_list, limits=limits)
    passed = int(run.report.get("passed", 0)) if run.report else 0
    return PythonCheck(passed if run.report and not run.report.get("code_error") else 0, len(test_list), run)
