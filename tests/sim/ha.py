"""What the high-availability scenario needs beside the simulated cluster: replicas of the
operator, a Service in front of their webhooks, and a Prometheus slow enough to kill a
leader in the middle of a cycle.

- `Service` models a ClusterIP Service as kube-proxy serves it: each new TCP connection goes
  to one of the current endpoints, round robin; a connection stays with the endpoint it was
  opened to (conntrack) until either side closes it. Removing an endpoint takes effect
  after a lag (the endpoints controller and kube-proxy take a moment in a real cluster).
  The apiserver calls the webhook through it, over TLS (bytes are passed through).
- `SlowPrometheus` forwards every query to the sim's Prometheus after a delay and counts
  those in flight: while one is, the leader is inside an accounting cycle, before it
  writes anything.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.e2e.controlplane import _free_port
from tests.e2e.operating import Operator

from .cluster import Processes, Sim, _alive, _signal

PORT_KEYS = ("COSTGOV_WEBHOOK_PORT", "COSTGOV_METRICS_PORT", "COSTGOV_LIVENESS_PORT")
OWN_KEYS = (*PORT_KEYS, "COSTGOV_IDENTITY", "KUBECONFIG")
"""What each replica has of its own (Operator.start sets them)."""


class Service:
    def __init__(self) -> None:
        self.port = _free_port()
        self.endpoints: list[int] = []
        self.served: dict[int, int] = {}
        self._lock, self._turn = threading.Lock(), itertools.count()
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def add(self, port: int) -> None:
        with self._lock:
            self.endpoints.append(port)

    def remove(self, port: int, lag: float = 0.0) -> None:
        def drop() -> None:
            time.sleep(lag)
            with self._lock:
                self.endpoints.remove(port)

        threading.Thread(target=drop, daemon=True).start()

    def close(self) -> None:
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                if not self.endpoints:
                    client.close()
                    continue
                port = self.endpoints[next(self._turn) % len(self.endpoints)]
                self.served[port] = self.served.get(port, 0) + 1
            threading.Thread(target=self._pipe, args=(client, port), daemon=True).start()

    @staticmethod
    def _pipe(client: socket.socket, port: int) -> None:
        try:
            backend = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            client.close()  # as a dead pod behind kube-proxy: the connection fails
            return
        backend.settimeout(None)

        def copy(src: socket.socket, dst: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while data := src.recv(65536):
                    dst.sendall(data)
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

        threading.Thread(target=copy, args=(backend, client), daemon=True).start()
        copy(client, backend)


FORWARDED = ("accept", "content-type", "authorization", "user-agent")
"""Headers passed on (no Accept-Encoding: the body goes back as Prometheus sent it)."""


class SlowPrometheus:
    def __init__(self, upstream: str, delay: float) -> None:
        self.in_flight, self.upstream, self.delay = 0, upstream, delay
        lock, outer = threading.Lock(), self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size) if size else None
                with lock:
                    outer.in_flight += 1
                try:
                    time.sleep(outer.delay)
                    request = urllib.request.Request(
                        outer.upstream + self.path, data=body, method=self.command,
                        headers={k: v for k, v in self.headers.items() if k.lower() in FORWARDED},
                    )  # fmt: skip
                    try:
                        with urllib.request.urlopen(request, timeout=30) as r:
                            status, data, kind = r.status, r.read(), r.headers["Content-Type"]
                    except urllib.error.HTTPError as err:  # Prometheus' own error answer
                        status, data, kind = err.code, err.read(), err.headers["Content-Type"]
                finally:
                    with lock:
                        outer.in_flight -= 1
                with contextlib.suppress(OSError):  # the caller was killed meanwhile
                    self.send_response(status)
                    self.send_header("Content-Type", kind or "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

            def do_GET(self) -> None:
                self._forward()

            def do_POST(self) -> None:
                self._forward()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()


def replica(sim: Sim, prometheus: str) -> Operator:
    """Another `costgov run` with the sim operator's settings, its own ports and identity."""
    settings = {k: v for k, v in sim.operator_env.items() if k not in OWN_KEYS}
    return _started(sim, _free_port(), {**settings, "COSTGOV_PROMETHEUS_URL": prometheus})


def _started(sim: Sim, port: int, settings: dict[str, str], detach: bool = False) -> Operator:
    cp = sim.cp
    op = Operator(cp, port, cp.root / "webhook.crt", cp.root / "webhook.key",
                  settings=settings, detach=detach)  # fmt: skip
    op.start()
    return op


def stop_sim_operator(sim: Sim) -> None:
    """SIGTERM to the operator the sim started (it releases the Lease on its way out)."""
    procs = Processes(sim.root)
    pid = procs.pids["costgov"]
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    _signal(pid, signal.SIGKILL)


def restart_sim_operator(sim: Sim) -> None:
    """The sim's operator again, as it was (ports, settings), for the scenarios after."""
    settings = {
        k: v for k, v in sim.operator_env.items() if k not in ("COSTGOV_IDENTITY", "KUBECONFIG")
    }
    op = _started(sim, int(settings["COSTGOV_WEBHOOK_PORT"]), settings, detach=True)
    assert op.proc is not None
    Processes(sim.root).add("costgov", op.proc.pid)


def leads(op: Operator) -> bool:
    """What the replica's own /metrics says: costgov_leader 1."""
    url = f"http://127.0.0.1:{op.env['COSTGOV_METRICS_PORT']}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return False
    return "\ncostgov_leader 1.0" in text


def webhooks_to(sim: Sim, port: int) -> int:
    """Point every costgov webhook at 127.0.0.1:`port`; returns the port they used."""
    names = sim.cp.kubectl("get", "validatingwebhookconfiguration", "-o", "name").stdout.split()
    [name] = [n for n in names if "costgov" in n]
    config = json.loads(sim.cp.kubectl("get", name, "-o", "json").stdout)
    before = 0
    for hook in config["webhooks"]:
        url = hook["clientConfig"]["url"]
        host, rest = url.removeprefix("https://").split("/", 1)
        before = int(host.rsplit(":", 1)[1])
        hook["clientConfig"]["url"] = f"https://127.0.0.1:{port}/{rest}"
    sim.cp.kubectl("replace", "-f", "-", stdin=json.dumps(config))
    return before


def events(sim: Sim, ns: str, kind: str, name: str, reason: str) -> list[dict[str, Any]]:
    found = json.loads(sim.cp.kubectl("get", "events", "-n", ns, "-o", "json").stdout)["items"]
    return [
        e for e in found
        if e["involvedObject"].get("kind") == kind and e["involvedObject"].get("name") == name
        and e.get("reason") == reason
    ]  # fmt: skip
