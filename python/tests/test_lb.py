"""Three `corral serve` replicas on loopback behind HAProxy, a client load through it, one
replica killed with SIGKILL mid-load: every request is answered, and every answer's
deterministic report equals the single-process run (`corral run --json`) of the same program.
HAProxy (Debian's, installed by scripts/provision.sh) runs deploy/haproxy.cfg unchanged.

The retry rule: a request that got no answer is sent again, to whichever replica HAProxy
picks. HAProxy retries what it sees (the replica refused the connection, closed it without
answering, or answered 502/503/504), at most 3 times, each time on another replica; a client
retries what reaches it (the connection refused, reset or cut mid-answer; 429, 502, 503 or
504: no run, or a run that was cancelled), with a growing pause, at most 40 times. A request
may therefore run twice (once on the replica that died with it, once on another); that is
safe because a run is deterministic (fuel, not wall time, bounds it; clocks and randomness
are virtual), so both runs give the same report. Every other status (200, and also 422, or
500 with a `host_error` report) is an answer and is never retried.
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import ROOT, cli, corral_bin
from test_async import _note

HAPROXY_CFG = ROOT / "deploy" / "haproxy.cfg"
LOOPBACK = "127.0.0.1"
REPLICAS = 3
VICTIM = 1  # the replica killed mid-load
CLIENTS = 6
REQUESTS = 300
KILL_AFTER = REQUESTS // 3  # answers received before the kill
MAX_ATTEMPTS = 40  # per request; the backoff below makes that ≥ 30 s of trying
RETRY_STATUSES = {429, 502, 503, 504}
# Keys of the JSON report that are not deterministic (docs/interface.md, "Determinism";
# `Report.deterministic_dict()` drops the same ones).
NOT_DETERMINISTIC = ("record", "wall_time_ms", "isolation")

WAT_HELLO = """(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello from wat\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 15))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"""
WAT_EXIT = """(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 7))))
"""
WAT_TRAP = '(module (func (export "_start") unreachable))'
WAT_DIV = """(module
  (func (export "_start") (drop (i32.div_s (i32.const 1) (i32.const 0)))))
"""


@dataclass(frozen=True)
class Job:
    """One distinct program and input; every request is one of these."""

    name: str
    language: str
    code: str
    stdin: str | None = None
    fuel: int | None = None  # a lower fuel limit than the server policy's

    def body(self) -> bytes:
        req: dict = {"code": self.code, "language": self.language, "record": False}
        if self.stdin is not None:
            req["stdin"] = self.stdin
        if self.fuel is not None:
            req["limits"] = {"fuel": self.fuel}
        return json.dumps(req).encode()


def jobs() -> list[Job]:
    out = []
    for n in (0, 1, 7, 100, 2_000, 30_000):
        code = "n = int(input())\nprint(n, sum(k * k for k in range(n)))\n"
        out.append(Job(f"py-squares-{n}", "python", code, stdin=str(n)))
    for i in range(6):
        out.append(Job(f"py-f-{i}", "python", f"def f(x):\n    return x * x + {i}\n\n\nprint(f({i}))\n"))
    for i in range(3):
        out.append(Job(f"py-raise-{i}", "python", f"print('before')\nraise ValueError({i})\n"))
    for i in (1, 3):
        out.append(Job(f"py-exit-{i}", "python", f"import sys\nprint('bye', file=sys.stderr)\nsys.exit({i})\n"))
    out.append(Job("py-slow", "python", "print(sum(i % 7 for i in range(200_000)))\n"))
    out.append(Job("py-fuel", "python", "while True:\n    pass\n", fuel=20_000_000))
    out.append(Job("wat-hello", "wat", WAT_HELLO))
    out.append(Job("wat-exit", "wat", WAT_EXIT))
    out.append(Job("wat-trap", "wat", WAT_TRAP))
    out.append(Job("wat-div", "wat", WAT_DIV))
    return out


def deterministic(report: dict) -> dict:
    """The report without its non-deterministic keys."""
    return {k: v for k, v in report.items() if k not in NOT_DETERMINISTIC}


def single_process(job: Job, tmp: Path) -> dict:
    """The job's report from one `corral run --json` process (no service, no balancer)."""
    d = tmp / job.name
    d.mkdir()
    # The service names a source `main.<ext>`; a Python traceback shows that name.
    src = d / ("main.py" if job.language == "python" else "main.wat")
    src.write_text(job.code)
    argv = ["run", "--json", "--no-record"]
    if job.stdin is not None:
        (d / "stdin").write_text(job.stdin)
        argv += ["--stdin", str(d / "stdin")]
    if job.fuel is not None:
        (d / "policy.toml").write_text(f'extends = "strict"\n[limits]\nfuel = {job.fuel}\n')
        argv += ["--policy", str(d / "policy.toml")]
    return json.loads(cli(*argv, str(src)).stdout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def wait_for(what: str, cond, timeout: float = 30.0, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def http_get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@dataclass
class Replica:
    """One `corral serve` process."""

    proc: subprocess.Popen
    port: int
    log: Path

    def runs(self) -> int:
        """Runs this replica finished (its log has one `run` line per run)."""
        return sum(1 for line in self.log.read_text().splitlines() if '"message":"run"' in line)

    def running(self) -> int:
        try:
            status, body = http_get(self.port, "/readyz")
        except OSError:
            return 0
        return json.loads(body)["running"] if status == 200 else 0


    @classmethod
    def start(cls, tmp: Path, i: int) -> Replica:
        """`corral serve` on a free loopback port, one worker process, logging to a file."""
        log = tmp / f"replica-{i}.log"
        # Its own temp dir: the replica killed with SIGKILL cannot remove its work dir, and
        # nothing of the test may stay in the shared one.
        own_tmp = tmp / f"replica-{i}-tmp"
        own_tmp.mkdir()
        with log.open("wb") as f:
            proc = subprocess.Popen(
                [str(corral_bin()), "serve", "--listen", f"{LOOPBACK}:0", "--workers", "1", "--no-record"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=f,
                env=dict(os.environ, TMPDIR=str(own_tmp)),
            )  # fmt: skip
        return cls(proc, 0, log)

    def wait_listening(self) -> None:
        """Its port, from the line it prints once it listens."""

        def port() -> int | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.log.name}: exited {self.proc.returncode}: {self.log.read_text()}")
            m = re.search(r"corral serve: listening on http://127\.0\.0\.1:(\d+)", self.log.read_text())
            return m and int(m.group(1))

        self.port = wait_for(f"{self.log.name} to listen", port)


class HAProxy:
    """HAProxy in the foreground, balancing over the replicas, with its admin socket for
    `show stat`."""

    def __init__(self, tmp: Path, replicas: list[Replica]) -> None:
        exe = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
        if exe is None:
            pytest.fail("haproxy is missing (hint: bash scripts/provision.sh installs it)")
        assert len(replicas) == 3, "deploy/haproxy.cfg names three replicas"
        self.port = free_port()
        self.sock = tmp / "haproxy.sock"
        env = dict(os.environ, CORRAL_LB_LISTEN=f"{LOOPBACK}:{self.port}", CORRAL_LB_STATS=str(self.sock))
        env.update({f"CORRAL_REPLICA_{i}": f"{LOOPBACK}:{r.port}" for i, r in enumerate(replicas)})
        argv = [exe, "-f", str(HAPROXY_CFG)]
        check = subprocess.run([*argv, "-c", "-q"], env=env, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        self.log = tmp / "haproxy.log"
        with self.log.open("wb") as f:  # -db: in the foreground, logging to stdout
            self.proc = subprocess.Popen([*argv, "-db"], env=env, stdin=subprocess.DEVNULL, stdout=f, stderr=f)

    def wait_all_up(self) -> None:
        """Until its health checks have found every replica ready."""

        def all_up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"haproxy exited {self.proc.returncode}: {self.log.read_text()}")
            try:
                return all(s["status"] == "UP" for s in self.servers().values())
            except OSError:  # not listening on its socket yet
                return False

        wait_for("haproxy to find every replica up", all_up)

    def stats(self) -> list[dict]:
        """`show stat` on the admin socket: one row per frontend, server and backend."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.sock))
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        text = data.decode().lstrip("# ")
        return list(csv.DictReader(io.StringIO(text)))

    def servers(self) -> dict[str, dict]:
        return {r["svname"]: r for r in self.stats() if r["pxname"] == "replicas" and r["svname"].startswith("r")}

    def backend(self) -> dict:
        return next(r for r in self.stats() if r["pxname"] == "replicas" and r["svname"] == "BACKEND")


@dataclass
class Answer:
    """A request's answer, as its client got it."""

    status: int
    report: dict
    replica: str  # the server that answered (HAProxy's `x-replica` header)
    attempts: int
    retries: list[str] = field(default_factory=list)
    sent: float = 0.0  # when the attempt that got the answer was sent (time.monotonic)
    done: float = 0.0  # when the answer arrived


def request(port: int, job: Job) -> Answer:
    """POST /v1/run through the balancer until an answer comes (the module's retry rule)."""
    body = job.body()
    retries: list[str] = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=60)
        sent = time.monotonic()
        try:
            conn.request("POST", "/v1/run", body, {"content-type": "application/json"})
            resp = conn.getresponse()
            status, data, replica = resp.status, resp.read(), resp.getheader("x-replica", "")
        except (OSError, http.client.HTTPException) as e:  # refused, reset, cut mid-answer
            retries.append(type(e).__name__)
        else:
            if status not in RETRY_STATUSES:
                return Answer(status, json.loads(data), replica, attempt, retries, sent, time.monotonic())
            retries.append(str(status))
        finally:
            conn.close()
        time.sleep(min(1.0, 0.05 * attempt))
    raise AssertionError(f"{job.name}: no answer after {MAX_ATTEMPTS} attempts ({retries})")


@contextmanager
def cluster(tmp: Path) -> Iterator[tuple[list[Replica], HAProxy]]:
    """The replicas and the balancer in front of them; each stopped by its own pid after."""
    replicas: list[Replica] = []
    lb: HAProxy | None = None
    try:
        for i in range(REPLICAS):
            replicas.append(Replica.start(tmp, i))
        for r in replicas:
            r.wait_listening()
        lb = HAProxy(tmp, replicas)
        lb.wait_all_up()
        yield replicas, lb
    finally:
        procs = [r.proc for r in replicas] + ([lb.proc] if lb else [])
        for p in procs:
            if p.poll() is None:
                p.terminate()  # SIGTERM: a replica drains, HAProxy stops
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_a_replica_killed_mid_load_loses_no_request(tmp_path: Path) -> None:
    started = time.monotonic()
    catalogue = jobs()
    # The single-process runs first (this also builds and caches the Python runner once).
    with ThreadPoolExecutor(2) as pool:
        expected = list(pool.map(lambda j: deterministic(single_process(j, tmp_path)), catalogue))
    verdicts = {e["verdict"] for e in expected}
    assert verdicts == {"ok", "exit", "trap", "limit"}, verdicts
    assert all(e["deterministic"] for e in expected)
    baseline_s = time.monotonic() - started

    order = [i % len(catalogue) for i in range(REQUESTS)]
    random.Random(14).shuffle(order)

    with cluster(tmp_path) as (replicas, lb):
        answered = 0
        lock = threading.Lock()
        kill_now = threading.Event()

        def one(i: int) -> Answer:
            nonlocal answered
            a = request(lb.port, catalogue[order[i]])
            with lock:
                answered += 1
                if answered == KILL_AFTER:
                    kill_now.set()
            return a

        load_started = time.monotonic()
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(one, i) for i in range(REQUESTS)]
            assert kill_now.wait(timeout=60), "the load stalled before the kill"
            victim = replicas[VICTIM]
            # Kill it while it is running a request, so that one dies with it unanswered.
            in_flight = wait_for("the victim to be running a request", victim.running, timeout=10, every=0.005)
            victim.proc.send_signal(signal.SIGKILL)
            killed_at, answered_at_kill = time.monotonic(), answered
            victim.proc.wait(timeout=10)
            dead_at = time.monotonic()
            answers = [f.result() for f in futures]
        load_s = time.monotonic() - load_started
        # Its health checks (every 200 ms, 2 failures) take it out of the rotation.
        wait_for("haproxy to mark the killed replica down", lambda: lb.servers()[f"r{VICTIM}"]["status"] == "DOWN")
        backend = lb.backend()
        victim_runs = victim.runs()  # the runs it finished before its death

    # Every request has its answer, and it is the single-process report.
    assert len(answers) == REQUESTS
    for i, a in enumerate(answers):
        job = catalogue[order[i]]
        assert a.status == 200, (job.name, a.status, a.report)
        assert deterministic(a.report) == expected[order[i]], job.name
    # The kill happened mid-load, on a replica that had been answering; nothing sent after its
    # death came from it, and the other two answered the rest.
    before = [a for a in answers if a.done < killed_at]
    after = [a for a in answers if a.done >= killed_at]
    assert len(before) >= KILL_AFTER and len(after) >= REQUESTS // 4, (len(before), len(after))
    by_replica = {f"r{i}": sum(a.replica == f"r{i}" for a in answers) for i in range(REPLICAS)}
    assert all(by_replica.values()), by_replica
    assert sum(by_replica.values()) == REQUESTS
    victim_name = f"r{VICTIM}"
    assert not [a for a in answers if a.sent > dead_at and a.replica == victim_name]
    assert victim_runs >= by_replica[victim_name] > 0, (victim_runs, by_replica)
    # The run lost with it was sent again: by HAProxy (a retry or a redispatch), or by its
    # client.
    client_retries = sum(len(a.retries) for a in answers)
    lb_retries, lb_redispatches = int(backend["wretr"] or 0), int(backend["wredis"] or 0)
    assert client_retries + lb_retries + lb_redispatches > 0

    runs = [r.runs() for r in replicas]
    reasons = sorted({x for a in answers for x in a.retries})
    line = (
        f"lb: {REQUESTS} requests ({len(catalogue)} programs), {CLIENTS} clients, HAProxy over "
        f"{REPLICAS} replicas; r{VICTIM} SIGKILLed after {answered_at_kill} answers, running "
        f"{in_flight}; answers before/after the kill {len(before)}/{len(after)}; answers per "
        f"replica {by_replica}, runs {runs}; HAProxy retries {lb_retries}, redispatches "
        f"{lb_redispatches}; client retries {client_retries} {reasons}; all {REQUESTS} reports equal "
        f"the single-process ones; load {load_s:.1f} s, single-process runs {baseline_s:.1f} s, "
        f"test {time.monotonic() - started:.1f} s"
    )
    print(line)
    _note(line)
