"""Redirects per second and p50/p99 latency of the redirector on one core, 64 connections.

Run: .venv/bin/python benchmarks/redirector.py [--duration 10] [--load auto|wrk|python]
     [--check]   (prints the figures; --check exits 1 when a target is missed)

Ten stand-in members (federation_deploy.standin, threads of this process) answer the health
checks; the redirector runs as `federation-deploy redirector serve` in its own process pinned
to CPU 0; the load comes from another process pinned to the other CPUs: wrk (Debian package
`wrk`) when it is on PATH, else a Python asyncio load generator (this file, `--generate`).
Every request is a cookie-less launch of a different repository (/build/gh/orgN/repo-M/HEAD),
so each one does the full rendezvous over the ten members. Closed loop: 64 connections, each
sends its next request when the previous answer arrived.

Targets (the issue): at least 2,000 redirects/s with p99 under 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from federation_deploy.standin import StandinHandle, start_standin  # noqa: E402

CONNECTIONS = 64
MEMBERS = 10
TARGET_RPS = 2000
TARGET_P99_MS = 20.0
REPOS = 5000

WRK_SCRIPT = """
counter = 0
request = function()
  counter = counter + 1
  local path = "/build/gh/org" .. (counter % 97) .. "/repo-" .. (counter % %(repos)d) .. "/HEAD"
  return wrk.format("GET", path)
end
"""


# --- the load generator fallback (runs in its own process: --generate) -------------------------


async def _connection(port: int, worker: int, stop_at: float, latencies: list[float],
                      statuses: dict[int, int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = worker
    try:
        while time.perf_counter() < stop_at:
            i += CONNECTIONS
            path = f"/build/gh/org{i % 97}/repo-{i % REPOS}/HEAD"
            start = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            if match and int(match.group(1)):
                await reader.readexactly(int(match.group(1)))
            latencies.append(time.perf_counter() - start)
            status = int(head[9:12])
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def _generate(port: int, duration: float) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter()
    stop_at = start + duration
    await asyncio.gather(*(_connection(port, w, stop_at, latencies, statuses)
                           for w in range(CONNECTIONS)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
        "statuses": statuses,
    }


def run_python_load(port: int, duration: float, cpus: set[int]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--generate", str(port), "--duration", str(duration)],
        capture_output=True, text=True, check=True, preexec_fn=_pin(cpus),
    )
    result: dict[str, Any] = json.loads(proc.stdout)
    result["generator"] = "python asyncio (64 connections, 1 process)"
    return result


# --- wrk ------------------------------------------------------------------------------------------


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(port: int, duration: float, cpus: set[int], workdir: Path) -> dict[str, Any]:
    script = workdir / "launches.lua"
    script.write_text(WRK_SCRIPT.replace("%(repos)d", str(REPOS)))
    threads = max(1, len(cpus))
    proc = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{CONNECTIONS}", f"-d{max(1, round(duration))}s", "--latency",
         "-s", str(script), f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, check=True, preexec_fn=_pin(cpus),
    )
    out = proc.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests": total,
        "seconds": total / rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "statuses": {"non-2xx/3xx": int(bad.group(1)) if bad else 0},
        "socket_errors": errors.group(1) if errors else "",
        "generator": f"wrk ({threads} thread(s), {CONNECTIONS} connections)",
    }


# --- the set-up --------------------------------------------------------------------------------


def _pin(cpus: set[int]) -> Any:
    def pin() -> None:
        if cpus and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, cpus)

    return pin


def start_members() -> list[StandinHandle]:
    return [start_standin(f"member{i}") for i in range(MEMBERS)]


def write_config(path: Path, members: list[StandinHandle]) -> None:
    hosts = {
        s.name: {"url": s.url, "weight": 10 + i, "prime": i == 0} for i, s in enumerate(members)
    }
    config = {"hosts": hosts, "check": {"period": 2, "jitter": 0.1, "retries": 2, "timeout": 2,
                                        "failed_period": 10},
              "load_balancer": "rendezvous", "pod_headroom": 10, "host_cookie_age_hours": 4}
    path.write_text(json.dumps(config))


def start_redirector(config: Path, log: Path, cpu: int) -> tuple[subprocess.Popen[bytes], int]:
    cli = [sys.executable, "-c", "from federation_deploy.cli import main; main()"]
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [*cli, "redirector", "serve", "--config", str(config), "--port", "0",
             "--address", "127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=sink, preexec_fn=_pin({cpu}),
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read_text())
        if match:
            return proc, int(match.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise SystemExit(f"the redirector did not start:\n{log.read_text()}")


def wait_all_active(port: int) -> None:
    import http.client

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/active_hosts")
        active = json.loads(conn.getresponse().read())["active_hosts"]
        conn.close()
        if len(active) == MEMBERS:
            return
        time.sleep(0.1)
    raise SystemExit("members did not all become healthy")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load")
    parser.add_argument("--load", choices=["auto", "wrk", "python"], default="auto",
                        help="load generator (auto: wrk when on PATH)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--generate", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        print(json.dumps(asyncio.run(_generate(args.generate, args.duration))))
        return 0

    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    server_cpu = cpus[0]
    load_cpus = set(cpus[1:]) or {server_cpu}
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, load_cpus)  # the stand-ins stay off the redirector's core
    use_wrk = args.load == "wrk" or (args.load == "auto" and shutil.which("wrk"))
    if args.load == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not on PATH (apt-get install wrk), or use --load python")

    members = start_members()
    with tempfile.TemporaryDirectory(prefix="redirector-bench-") as tmp:
        workdir = Path(tmp)
        config = workdir / "config.json"
        write_config(config, members)
        proc, port = start_redirector(config, workdir / "redirector.log", server_cpu)
        try:
            wait_all_active(port)
            warm = min(2.0, args.duration)
            if use_wrk:
                run_wrk(port, warm, load_cpus, workdir)
                cpu_before = _cpu_seconds(proc.pid)
                result = run_wrk(port, args.duration, load_cpus, workdir)
            else:
                run_python_load(port, warm, load_cpus)
                cpu_before = _cpu_seconds(proc.pid)
                result = run_python_load(port, args.duration, load_cpus)
            cpu_after = _cpu_seconds(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        for member in members:
            member.stop()

    rps = result["requests"] / result["seconds"]
    result.update(redirects_per_second=rps, members=MEMBERS, connections=CONNECTIONS,
                  redirector_cpu=server_cpu, load_cpus=sorted(load_cpus),
                  cpus=len(cpus))
    if cpu_before is not None and cpu_after is not None:
        # near 1.0: the redirector's core was the bottleneck, not the load generator
        result["redirector_core_busy"] = (cpu_after - cpu_before) / result["seconds"]
    ok = rps >= TARGET_RPS and result["p99_ms"] < TARGET_P99_MS
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"redirector benchmark: {MEMBERS} members, {CONNECTIONS} connections, "
              f"redirector on CPU {server_cpu}, load on CPU(s) {sorted(load_cpus)}")
        print(f"  load generator   {result['generator']}")
        print(f"  requests         {result['requests']} in {result['seconds']:.1f} s "
              f"(answers: {result['statuses']})")
        print(f"  redirects/s      {rps:,.0f}   (target >= {TARGET_RPS:,})")
        print(f"  latency p50      {result['p50_ms']:.2f} ms")
        print(f"  latency p99      {result['p99_ms']:.2f} ms   (target < {TARGET_P99_MS:g} ms)")
        if "redirector_core_busy" in result:
            print(f"  redirector core  {100 * result['redirector_core_busy']:.0f}% busy")
        if len(cpus) < 2:
            print("  note: one CPU only, the load shares the redirector's core")
        print(f"  {'targets met' if ok else 'TARGET MISSED'}")
    return 1 if args.check and not ok else 0


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time the redirector process used so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


if __name__ == "__main__":
    sys.exit(main())
