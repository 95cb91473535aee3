"""Start and stop a real embedloop server (BentoML) on a free loopback port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import REPO, free_port


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    log: Path
    home: Path

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM our server (it drains), then the rest of its process group if anything lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # circus children, if any outlived the arbiter
        except ProcessLookupError:
            pass
        return self.process.returncode


def start_server(home: Path, log: Path, *, target: list[str] | None = None, env: dict | None = None,
                 ready_timeout: float = 180) -> Server:
    port = free_port()
    environment = {**os.environ, "EMBEDLOOP_HOME": str(home), **(env or {})}
    command = target or [str(Path(sys.executable).parent / "embedloop"), "serve"]
    with open(log, "w") as fh:
        process = subprocess.Popen([*command, "--host", "127.0.0.1", "--port", str(port)], cwd=REPO, env=environment,
                                   stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(process, f"http://127.0.0.1:{port}", log, home)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"server not ready in {ready_timeout}s:\n{log.read_text()[-3000:]}")
