"""``rewardkit serve`` as a real process: SIGTERM while a request is being scored lets that request finish
(with every reward), refuses new work, and the process exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_fixtures import free_port

N_ITEMS = 400  # scored one per model call: a request that takes a while


def _wait_healthy(url: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {proc.communicate()[0]}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not become healthy")


def _scored_batches(url: str, headers: dict[str, str]) -> float:
    text = httpx.get(url + "/metrics", headers=headers, timeout=5).text
    line = next((ln for ln in text.splitlines() if ln.startswith("rewardkit_batches_total")), "x 0")
    return float(line.split()[-1])


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_drains_the_inflight_request_and_exits_0(tiny_rms: dict[str, Path], tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("k3y\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": "Bearer k3y"}
    cmd = [sys.executable, "-m", "rewardkit.cli", "serve", "--model", str(tiny_rms["llama"]), "--port", str(port),
           "--max-batch-size", "1", "--max-wait-ms", "0", "--api-key-file", str(key_file), "--log-level", "warning",
           "--drain-timeout", "300", "--torch-threads", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    try:
        _wait_healthy(url, proc)
        assert httpx.post(url + "/v1/score", json={"items": [{"response": "a"}]}).status_code == 401
        result: dict[str, Any] = {}

        def slow_request() -> None:
            body = {"items": [{"prompt": "Hi", "response": f"answer number {i}"} for i in range(N_ITEMS)]}
            result["response"] = httpx.post(url + "/v1/score", json=body, headers=headers, timeout=120)

        thread = threading.Thread(target=slow_request)
        thread.start()
        deadline = time.monotonic() + 60
        while _scored_batches(url, headers) < 5:  # it is being scored now
            assert time.monotonic() < deadline, "the slow request never started"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        with pytest.raises(httpx.TransportError):  # the listening socket is closed: no new work
            httpx.post(url + "/v1/score", json={"items": [{"response": "late"}]}, headers=headers, timeout=5)
        thread.join(timeout=120)
        response = result["response"]
        assert response.status_code == 200, response.text
        rewards = [i["reward"] for i in response.json()["items"]]
        assert len(rewards) == N_ITEMS and len(set(rewards)) > 1
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        assert "serving" in out and "server stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
