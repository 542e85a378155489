"""The Python sandbox against hostile code: each snippet must fail inside the sandbox and leave the host
(its files, environment, processes, this test run) untouched. Where a test turns the audit-hook layer
off (``guard=False``) it checks that the OS layers alone hold; those skip where the OS layer is missing."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from rewardkit.verify.sandbox import SandboxLimits, check_python, extract_code, isolation, run_python

FAST = SandboxLimits(cpu_s=1, wall_s=4.0)
BARE = SandboxLimits(cpu_s=2, wall_s=6.0, guard=False)  # the OS layers only
needs_uid = pytest.mark.skipif(not isolation()["uid"], reason="needs root to run the code as another user")
needs_ns = pytest.mark.skipif(not isolation()["namespaces"], reason="needs network/PID namespaces (unshare)")


def error_of(code: str, limits: SandboxLimits = FAST) -> str:
    result = run_python(code, limits=limits)
    assert result.status == "ok" and result.report is not None, result
    return str(result.report["code_error"])


# ------------------------------------------------------------------------------------ ordinary code


def test_standard_library_code_and_tests_run() -> None:
    code = ("from collections import namedtuple\nfrom dataclasses import dataclass\nimport enum, json, math, re\n"
            "P = namedtuple('P', 'x y')\nclass C(enum.Enum):\n    A = 1\n"
            "def add(a, b):\n    return a + b\nprint('hello')\nopen('scratch.txt', 'w').write('ok')\n")
    tests = ["assert add(1, 2) == 3", "assert add(2, 2) == 5", "assert open('scratch.txt').read() == 'ok'",
             "import unittest\nclass T(unittest.TestCase):\n    def test(self):\n        self.assertEqual(P(1, 2).y, 2)\n"
             "r = unittest.TextTestRunner(stream=__import__('io').StringIO()).run("
             "unittest.defaultTestLoader.loadTestsFromTestCase(T))\nassert r.wasSuccessful()"]
    result = run_python(code, tests=tests, limits=FAST)
    assert result.status == "ok" and result.output == "hello\n"
    assert result.report == {"passed": 3, "total": 4, "code_error": None,
                             "failures": [{"test": 1, "error": "AssertionError: "}]}


def test_check_python_reward() -> None:
    response = "Here you go:\n```python\ndef sq(x):\n    return x * x\n```\nDone."
    assert extract_code(response) == "def sq(x):\n    return x * x\n"
    assert check_python(response, ["assert sq(3) == 9", "assert sq(-2) == 4"]).reward == 1.0
    assert check_python(response, ["assert sq(3) == 9", "assert sq(2) == 5"]).reward == 0.5
    assert check_python("def sq(x) return", ["assert sq(3) == 9"]).reward == 0.0  # syntax error
    assert check_python("while True: pass", ["assert True"], limits=FAST).reward == 0.0  # never finishes


# ------------------------------------------------------------------------------------ hostile code


def test_infinite_loop_is_stopped_by_the_cpu_limit() -> None:
    t0 = time.perf_counter()
    result = run_python("while True:\n    pass", limits=SandboxLimits(cpu_s=1, wall_s=20))
    assert result.status == "cpu_limit" and result.report is None
    assert time.perf_counter() - t0 < 15  # one CPU second, however busy the machine


def test_sleeping_forever_is_killed_at_the_wall_clock() -> None:
    result = run_python("import time\ntime.sleep(3600)", limits=SandboxLimits(wall_s=1.5))
    assert result.status == "timeout" and result.wall_s < 4


def test_a_gigabyte_of_output_is_cut_and_killed() -> None:
    limits = SandboxLimits(output_bytes=100_000, wall_s=10)
    for code in ("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)",
                 "import os\nfor _ in range(16384):\n    os.write(1, b'y' * 65536)"):  # 1 GiB
        t0 = time.perf_counter()
        result = run_python(code, limits=limits)
        assert result.status == "output_limit" and len(result.output) <= limits.output_bytes
        assert time.perf_counter() - t0 < 5


def test_fork_bomb_is_refused() -> None:
    assert "os.fork is not allowed" in error_of("import os\nwhile True:\n    os.fork()")
    assert "not allowed" in error_of("import subprocess\nsubprocess.run(['sh', '-c', ':(){ :|:& };:'])")
    assert "not allowed" in error_of("import ctypes\nctypes.CDLL(None).fork()")


@needs_uid
def test_process_limit_holds_without_the_audit_hook() -> None:
    """A bounded fork loop (200 tries, limit 20 processes of the sandbox user) with the hook off: the
    kernel refuses forks past the limit, and the PID namespace reaps every child when the run ends."""
    code = ("import os, time\nok = 0\nfor _ in range(200):\n    try:\n        pid = os.fork()\n    except OSError:\n"
            "        continue\n    if pid == 0:\n        time.sleep(30)\n        os._exit(0)\n    ok += 1\nprint(ok)")
    t0 = time.perf_counter()
    result = run_python(code, limits=SandboxLimits(cpu_s=5, wall_s=10, processes=20, guard=False))
    assert result.status == "ok" and int(result.output.strip()) < 20
    assert time.perf_counter() - t0 < 8  # the sleeping children did not keep the run alive


@pytest.mark.parametrize("guard", [True, pytest.param(False, marks=needs_uid)])
def test_files_outside_the_working_directory_survive(tmp_path: Path, guard: bool) -> None:
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("keep", encoding="utf-8")
    os.chmod(tmp_path, 0o755)
    limits = SandboxLimits(cpu_s=2, wall_s=6, guard=guard)
    for code in (f"import os\nos.remove({str(sentinel)!r})", f"import shutil\nshutil.rmtree({str(tmp_path)!r})",
                 f"open({str(sentinel)!r}, 'w').write('pwned')", f"import os\nos.rename({str(sentinel)!r}, 'x')",
                 f"import os\nos.chmod({str(sentinel)!r}, 0o777)"):
        assert error_of(code, limits) != "None", code
    assert sentinel.read_text(encoding="utf-8") == "keep"


def test_environment_secrets_are_not_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDKIT_TEST_SECRET", "hunter2-do-not-leak")
    code = ("import os\nprint(dict(os.environ))\nfor p in ('/proc/self/environ', '/proc/1/environ', "
            f"'/proc/{os.getpid()}/environ', '/proc/%d/environ' % os.getppid()):\n"
            "    try:\n        print(open(p, 'rb').read())\n    except OSError as e:\n        print(type(e).__name__)")
    for guard in (True, False):
        result = run_python(code, limits=SandboxLimits(guard=guard))
        assert "hunter2" not in result.output and "REWARDKIT_TEST_SECRET" not in result.output


@pytest.mark.parametrize("guard", [True, pytest.param(False, marks=needs_ns)])
def test_no_network(guard: bool) -> None:
    code = "import socket\ns = socket.create_connection(('1.1.1.1', 53), timeout=2)\nprint('connected')"
    result = run_python(code, limits=SandboxLimits(guard=guard))
    assert "connected" not in result.output and result.report and result.report["code_error"]


def test_memory_and_file_size_limits() -> None:
    assert error_of("x = bytearray(8 << 30)").startswith("MemoryError")
    assert "File too large" in error_of("with open('big', 'wb') as f:\n    f.write(b'z' * (64 << 20))")


def test_limits_cannot_be_raised() -> None:
    code = "import resource\nresource.setrlimit(resource.RLIMIT_CPU, (10**6, 10**6))"
    assert "not allowed" in error_of(code)
    bare = run_python(code, limits=SandboxLimits(guard=False))
    assert bare.report and "ValueError" in str(bare.report["code_error"])  # soft = hard: the kernel refuses


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        SandboxLimits(cpu_s=0)
    with pytest.raises(ValueError):
        SandboxLimits(wall_s=0)
