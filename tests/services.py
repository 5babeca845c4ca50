"""Real services for tests: a local MLflow server and a multi-node local Ray cluster on loopback.

Each cluster lives in its own temp dir and ports and is stopped by killing exactly the
processes it started (never a global `ray stop`, which would kill other users' Ray).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from orchestrator.tracking import free_port

RAY = str(Path(sys.executable).with_name("ray"))


def service_env(**extra) -> dict:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
           "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0", **extra}
    env.pop("RAY_ADDRESS", None)
    return env


class RayCluster:
    """`ray start --head` plus optional worker nodes, all on 127.0.0.1, each with 1 CPU by default."""

    def __init__(self, temp_dir: Path):
        self.temp_dir = Path(temp_dir)
        self.port = free_port()
        self.dashboard_port = free_port()
        self.worker_ports: list[int] = []
        self.address = f"127.0.0.1:{self.port}"

    def _ray(self, *args: str) -> None:
        out = subprocess.run([RAY, "start", *args, "--node-ip-address=127.0.0.1", "--disable-usage-stats"],
                             env=service_env(), capture_output=True, text=True, timeout=180)
        if out.returncode != 0:
            raise RuntimeError(f"ray start failed: {out.stdout[-2000:]} {out.stderr[-2000:]}")

    def start_head(self, num_cpus: int = 1) -> "RayCluster":
        self._ray("--head", f"--port={self.port}", f"--temp-dir={self.temp_dir}", f"--num-cpus={num_cpus}",
                  "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard_port}",
                  f"--node-manager-port={free_port()}",
                  f"--object-manager-port={free_port()}", "--num-gpus=0")
        return self

    def add_worker(self, num_cpus: int = 1) -> int:
        """Start a worker node; returns its node manager port (identifies its raylet)."""
        port = free_port()
        self._ray(f"--address={self.address}", f"--num-cpus={num_cpus}", f"--node-manager-port={port}",
                  f"--object-manager-port={free_port()}", "--num-gpus=0", f"--temp-dir={self.temp_dir}")
        self.worker_ports.append(port)
        return port

    def wait_nodes(self, count: int, timeout: float = 60) -> None:
        import json
        deadline = time.time() + timeout
        while time.time() < deadline:
            out = subprocess.run([sys.executable, "-c", (
                "import ray, json; ray.init(address='%s', logging_level='ERROR'); "
                "print(json.dumps(sum(n['Alive'] for n in ray.nodes())))") % self.address],
                env=service_env(), capture_output=True, text=True, timeout=60)
            if out.returncode == 0 and out.stdout.strip() and json.loads(out.stdout.strip().splitlines()[-1]) >= count:
                return
            time.sleep(1)
        raise RuntimeError(f"cluster did not reach {count} nodes")

    def _processes(self) -> list[psutil.Process]:
        roots = []
        for proc in psutil.process_iter(["cmdline"]):
            try:
                if any(str(self.temp_dir) in part or f"={self.port}" in part for part in proc.info["cmdline"] or []):
                    roots.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return _with_descendants(roots)

    def kill_worker(self, node_manager_port: int) -> int:
        """SIGKILL a worker node's raylet and everything under it (its trials die with it)."""
        roots = [p for p in psutil.process_iter(["cmdline"])
                 if any(f"node_manager_port={node_manager_port}" in part for part in (p.info["cmdline"] or []))]
        procs = _with_descendants(roots)
        for proc in procs:
            _kill(proc)
        return len(procs)

    def stop(self) -> None:
        for proc in self._processes():
            _kill(proc)


def _with_descendants(roots: list[psutil.Process]) -> list[psutil.Process]:
    seen = {}
    for proc in roots:
        try:
            for p in [proc, *proc.children(recursive=True)]:
                seen[p.pid] = p
        except psutil.NoSuchProcess:
            continue
    return list(seen.values())


def _kill(proc: psutil.Process) -> None:
    try:
        proc.send_signal(signal.SIGKILL)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass
