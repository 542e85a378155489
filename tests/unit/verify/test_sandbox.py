"""The Python sandbox's ordinary behaviour: code and tests run, limits end runs with the right status,
the sandbox sees nothing of the host but the interpreter, its seccomp program decides as documented, and
without bubblewrap it refuses (or, when told to, runs loudly). Hostile snippets are in
``test_sandbox_escapes.py``; the same suite as an unprivileged user in ``test_sandbox_unprivileged.py``."""

from __future__ import annotations

import dataclasses
import errno
import os
import struct
import sys
from pathlib import Path

import pytest

from rewardkit.errors import OptionError, UnsupportedError
from rewardkit.verify import sandbox
from rewardkit.verify.sandbox import (
    DENIED_SYSCALLS,
    RET_ALLOW,
    RET_ERRNO,
    RET_KILL_PROCESS,
    SandboxLimits,
    check_python,
    extract_code,
    isolation,
    python_layout,
    run_python,
    seccomp_filter,
)

FAST = SandboxLimits(cpu_s=1, wall_s=4.0)
BARE = SandboxLimits(cpu_s=2, wall_s=6.0, guard=False)  # the OS layers only


def error_of(code: str, limits: SandboxLimits = FAST) -> str:
    result = run_python(code, limits=limits)
    assert result.status == "ok" and result.report is not None, result
    return str(result.report["code_error"])


def test_this_machine_runs_the_real_sandbox() -> None:
    """Every other test here assumes bwrap works; say plainly what is missing if it does not."""
    assert isolation()["bwrap"], (f"bubblewrap cannot start a sandbox here: {sandbox._plan(sys.executable).problem}; "
                                  f"{sandbox.INSTALL_HINT}")


# ------------------------------------------------------------------------------------ ordinary code


def test_standard_library_code_and_tests_run() -> None:
    code = ("from collections import namedtuple\nfrom dataclasses import dataclass\nimport enum, json, math, re\n"
            "P = namedtuple('P', 'x y')\nclass C(enum.Enum):\n    A = 1\n"
            "def add(a, b):\n    return a + b\nprint('hello')\nopen('scratch.txt', 'w').write('ok')\n"
            "import tempfile\nwith tempfile.TemporaryFile() as f:\n    f.write(b'tmp')\n")
    tests = ["assert add(1, 2) == 3", "assert add(2, 2) == 5", "assert open('scratch.txt').read() == 'ok'",
             "import unittest\nclass T(unittest.TestCase):\n    def test(self):\n        self.assertEqual(P(1, 2).y, 2)\n"
             "r = unittest.TextTestRunner(stream=__import__('io').StringIO()).run("
             "unittest.defaultTestLoader.loadTestsFromTestCase(T))\nassert r.wasSuccessful()"]
    result = run_python(code, tests=tests, limits=FAST)
    assert result.status == "ok" and result.output == "hello\n"
    assert result.report == {"passed": 3, "total": 4, "code_error": None,
                             "failures": [{"test": 1, "error": "AssertionError: "}]}


@pytest.mark.parametrize("guard", [True, False])
def test_threads_asyncio_and_decimal_work(guard: bool) -> None:
    """What solutions commonly use still works under the seccomp filter: threads (clone with
    CLONE_THREAD), asyncio (an AF_UNIX socketpair), C extension modules."""
    code = ("import asyncio, threading, decimal\nout = []\nt = threading.Thread(target=out.append, args=(1,))\n"
            "t.start(); t.join()\nasync def f():\n    await asyncio.sleep(0)\n    return 2\n"
            "out.append(asyncio.run(f()))\nout.append(str(decimal.Decimal('1.10') + 1))\nprint(out)")
    result = run_python(code, limits=dataclasses.replace(FAST, guard=guard))
    assert result.status == "ok" and result.output == "[1, 2, '2.10']\n", result


def test_check_python_reward() -> None:
    response = "Here you go:\n```python\ndef sq(x):\n    return x * x\n```\nDone."
    assert extract_code(response) == "def sq(x):\n    return x * x\n"
    assert check_python(response, ["assert sq(3) == 9", "assert sq(-2) == 4"]).reward == 1.0
    assert check_python(response, ["assert sq(3) == 9", "assert sq(2) == 5"]).reward == 0.5
    assert check_python("def sq(x) return", ["assert sq(3) == 9"]).reward == 0.0  # syntax error
    assert check_python("while True: pass", ["assert True"], limits=FAST).reward == 0.0  # never finishes
    with pytest.raises(OptionError):
        check_python(response, [])


# ------------------------------------------------------------------------------------ what it sees


def test_the_sandbox_holds_only_the_interpreter() -> None:
    """Walk the sandbox's whole file tree (hook off): every file outside its own /proc, /dev and the two
    tmpfs is the interpreter, a directory on its sys.path or a shared library it loads."""
    layout = python_layout(os.path.realpath(sys.executable))
    code = ("import os\nfor top, dirs, files in os.walk('/'):\n"
            "    if top in ('/proc', '/dev'):\n        dirs.clear()\n        continue\n"
            "    for name in files:\n        print(os.path.join(top, name))")
    result = run_python(code, limits=dataclasses.replace(BARE, output_bytes=4_000_000))
    assert result.status == "ok" and result.report == {"passed": 0, "total": 0, "code_error": None, "failures": []}
    allowed = (*layout.binds, *layout.libraries, layout.python)
    files = result.output.splitlines()
    assert layout.python in files and any(f.endswith("/os.py") for f in files)
    assert [f for f in files if not sandbox._under(f, allowed)] == []
    repository = str(Path(__file__).resolve().parents[3])
    assert not any(f.startswith(("/etc/", repository + "/")) for f in files)


@pytest.mark.parametrize("guard", [True, False])
def test_site_packages_and_the_project_are_not_importable(guard: bool) -> None:
    code = ("import importlib.util as u\n"
            "print([n for n in ('rewardkit', 'torch', 'pytest', 'numpy', 'ctypes') if u.find_spec(n) is not None])\n"
            "import sys\nprint(sys.flags.isolated, sys.flags.no_site)")
    result = run_python(code, limits=dataclasses.replace(FAST, guard=guard))
    # the ctypes package is found, its _ctypes extension is not (see test_sandbox_escapes.py)
    assert result.output == "['ctypes']\n1 1\n", result


# ------------------------------------------------------------------------------------ limits


def test_infinite_loop_is_stopped_by_the_cpu_limit() -> None:
    result = run_python("while True:\n    pass", limits=SandboxLimits(cpu_s=1, wall_s=20))
    assert result.status == "cpu_limit" and result.report is None


def test_sleeping_forever_is_killed_at_the_wall_clock() -> None:
    result = run_python("import time\ntime.sleep(3600)", limits=SandboxLimits(wall_s=1.5))
    assert result.status == "timeout" and result.report is None


def test_a_gigabyte_of_output_is_cut_and_killed() -> None:
    limits = SandboxLimits(output_bytes=100_000, wall_s=10)
    for code in ("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)",
                 "import os\nfor _ in range(16384):\n    os.write(1, b'y' * 65536)"):  # 1 GiB
        result = run_python(code, limits=limits)
        assert result.status == "output_limit" and len(result.output) <= limits.output_bytes


def test_memory_and_file_size_limits() -> None:
    assert error_of("x = bytearray(8 << 30)").startswith("MemoryError")
    assert "File too large" in error_of("with open('big', 'wb') as f:\n    f.write(b'z' * (64 << 20))")


def test_limits_cannot_be_raised() -> None:
    code = "import resource\nresource.setrlimit(resource.RLIMIT_CPU, (10**6, 10**6))"
    assert "not allowed" in error_of(code)
    bare = run_python(code, limits=BARE)
    assert bare.report and "ValueError" in str(bare.report["code_error"])  # soft = hard: the kernel refuses


def test_limits_are_validated() -> None:
    with pytest.raises(OptionError):
        SandboxLimits(cpu_s=0)
    with pytest.raises(ValueError):  # OptionError is a ValueError for callers that catch those
        SandboxLimits(wall_s=0)


# ------------------------------------------------------------------------------------ seccomp program


def decide(program: bytes, nr: int, arch: int, arg0: int = 0) -> int:
    """Run a classic-BPF seccomp program (only the four opcodes it uses) on one system call."""
    data = struct.pack("<IIQ6Q", nr, arch, 0, arg0, 0, 0, 0, 0, 0)
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = struct.unpack_from("<HBBI", program, 8 * pc)
        pc += 1
        if code == 0x20:  # ld [k]
            acc = struct.unpack_from("<I", data, k)[0]
        elif code in (0x15, 0x45):  # jeq #k / jset #k
            pc += jt if (acc == k if code == 0x15 else acc & k) else jf
        elif code == 0x06:  # ret #k
            return k
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


EPERM, ENOSYS = RET_ERRNO | errno.EPERM, RET_ERRNO | errno.ENOSYS
THREAD_FLAGS = 0x3D0F00  # what glibc's pthread_create passes to clone (VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|...)
# (machine, audit arch, read, execve, clone, clone3, socket, another architecture)
ARCHES = [("x86_64", 0xC000003E, 0, 59, 56, 435, 41, 0x40000003),
          ("aarch64", 0xC00000B7, 63, 221, 220, 435, 198, 0xC000003E)]


@pytest.mark.parametrize(("machine", "arch", "read", "execve", "clone", "clone3", "socket", "other"), ARCHES)
def test_seccomp_program_decisions(machine: str, arch: int, read: int, execve: int, clone: int, clone3: int,
                                   socket: int, other: int) -> None:
    prog = seccomp_filter(machine)
    column = 0 if machine == "x86_64" else 1
    assert decide(prog, read, arch) == RET_ALLOW
    assert decide(prog, execve, arch) == RET_ALLOW  # bwrap's own exec of the interpreter passes the filter
    for name, pair in DENIED_SYSCALLS.items():
        if pair[column] is not None:
            assert decide(prog, pair[column], arch) == EPERM, name
    assert decide(prog, clone, arch, THREAD_FLAGS) == RET_ALLOW  # a thread
    assert decide(prog, clone, arch, 17) == EPERM  # fork: SIGCHLD, no CLONE_THREAD
    assert decide(prog, clone, arch, 0x4111) == EPERM  # posix_spawn: CLONE_VM | CLONE_VFORK | SIGCHLD
    assert decide(prog, clone, arch, THREAD_FLAGS | 0x10000000) == EPERM  # a thread in a new user namespace
    assert decide(prog, clone3, arch) == ENOSYS  # glibc falls back to clone
    assert decide(prog, socket, arch, 1) == RET_ALLOW  # AF_UNIX
    for family in (2, 10, 16, 17):  # AF_INET, AF_INET6, AF_NETLINK, AF_PACKET
        assert decide(prog, socket, arch, family) == EPERM
    assert decide(prog, read, other) == RET_KILL_PROCESS  # another architecture's system calls
    if machine == "x86_64":
        assert decide(prog, read | 0x40000000, arch) == EPERM  # the x32 ABI


def test_seccomp_program_needs_a_known_architecture() -> None:
    with pytest.raises(UnsupportedError, match="riscv64"):
        seccomp_filter("riscv64")


# ------------------------------------------------------------------------------------ no bubblewrap


@pytest.fixture
def fresh_plan() -> object:
    """Forget what this process found out about bwrap, before and after the test."""
    sandbox._plan.cache_clear()
    yield
    sandbox._plan.cache_clear()


@pytest.mark.parametrize("bwrap", [None, "/bin/false"], ids=["not-installed", "cannot-start"])
def test_without_a_working_bwrap_it_refuses(monkeypatch: pytest.MonkeyPatch, fresh_plan: object,
                                            bwrap: str | None) -> None:
    monkeypatch.setattr(sandbox.shutil, "which", lambda name, *args, **kwargs: bwrap)
    assert isolation() == {"bwrap": False, "namespaces": False, "tmpfs": False, "uid": False, "seccomp": False,
                           "fresh_host_uid": False}
    with pytest.raises(UnsupportedError, match=r"apt-get install bubblewrap.*--unsafe-no-sandbox"):
        run_python("print('ran')")
    with pytest.raises(UnsupportedError):
        check_python("def f(): return 1", ["assert f() == 1"])


def test_the_override_runs_loudly_every_time(monkeypatch: pytest.MonkeyPatch, fresh_plan: object,
                                             capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sandbox.shutil, "which", lambda name, *args, **kwargs: None)
    limits = SandboxLimits(cpu_s=2, wall_s=6, allow_unsandboxed=True)
    for _ in range(2):
        result = run_python("print('ran')", tests=["assert 1 + 1 == 2"], limits=limits)
        assert result.status == "ok" and result.output == "ran\n" and result.report
        assert result.report["passed"] == 1
    assert capfd.readouterr().err.count("WARNING: running code WITHOUT the sandbox") == 2
