"""Several hosts on one machine: network namespaces, one Kubo node each, linked through a relay we control.

A test that needs peers on separate hosts makes a :class:`Lab`. Each :class:`Host` is a network namespace
(``ip netns``) joined to the test's own namespace by a veth pair with a /30 of its own (the host is
``10.201.<i>.2``, our side ``10.201.<i>.1``), optionally with its bandwidth shaped by ``tc``'s ``tbf``.
Hosts have no route to one another: the only way from host A to host B is a :class:`Link` of the
:class:`Relay`, a user-space TCP relay listening on A's side of the veth pair that forwards to B's node.
Nodes dial each other through those links (libp2p checks peer ids in its handshake, not addresses), and
each node's ``Peering.Peers`` names them, so Kubo redials a link that was cut. This kernel has no
``netem``, so the relay is where delay, jitter, stalls and cuts happen, on demand:

- ``Link.delay`` (one way) and ``Link.jitter``: each chunk is held until its time (order kept);
- ``Link.stall(seconds)``: nothing passes for a while (connections stay open);
- ``Link.cut()``: every connection of the link is closed at once (Kubo redials);
- ``Link.down()`` / ``Link.up()``: new connections are refused / accepted again (a partition).

Everything is made and removed by the lab itself (namespaces and veth pairs named after the test
process's pid, so parallel runs do not meet); a lab left behind by a killed run is removed by the next
one. Needs root and ``ip`` (iproute2); a test that cannot have them fails, never skips.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import random
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.kubo_node import KuboNode

__all__ = ["Host", "Lab", "LabError", "Link", "NamespacedKuboNode", "Relay"]

SUBNET = "10.201"
SWARM_PORT = 4001
API_PORT = 5001
_PREFIX = "orbitlab"


class LabError(RuntimeError):
    """The lab cannot be built (no root, no ``ip``, a command failed)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    ip = shutil.which("ip") or "/usr/sbin/ip"
    try:
        done = subprocess.run([ip, *args], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LabError(f"`ip {' '.join(args)}` failed: {e}") from e
    if check and done.returncode != 0:
        raise LabError(f"`ip {' '.join(args)}` failed ({done.returncode}): {done.stderr.strip()}")
    return done


def _remove_stale() -> None:
    """Remove namespaces and veth pairs of labs whose process is gone."""
    listed = _ip("netns", "list", check=False).stdout
    for name in re.findall(rf"^({_PREFIX}(\d+)h\d+)", listed, re.MULTILINE):
        namespace, pid = name
        if not Path(f"/proc/{pid}").exists():
            _ip("netns", "del", namespace, check=False)
    links = _ip("-o", "link", "show", check=False).stdout
    for veth, pid in re.findall(r"\d+: (ol(\d+)h\d+)[@:]", links):
        if not Path(f"/proc/{pid}").exists():
            _ip("link", "del", veth, check=False)


class Host:
    """One network namespace joined to ours by a veth pair (see the module docs).

    Args:
        lab_id: the lab's id (the test process's pid).
        index: the host's number (1..250).
        rate: if given, ``tbf`` shapes both directions of the host's veth to this rate (e.g. ``"50mbit"``).
    """

    def __init__(self, lab_id: int, index: int, rate: str | None = None) -> None:
        self.index = index
        self.namespace = f"{_PREFIX}{lab_id}h{index}"
        self.veth = f"ol{lab_id}h{index}"[:15]
        self.address = f"{SUBNET}.{index}.2"  # the host, inside its namespace
        self.gateway = f"{SUBNET}.{index}.1"  # our side: where the relay listens for this host
        _ip("netns", "add", self.namespace)
        try:
            _ip("link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.namespace)
            _ip("addr", "add", f"{self.gateway}/30", "dev", self.veth)
            _ip("link", "set", self.veth, "up")
            self.run("ip", "addr", "add", f"{self.address}/30", "dev", "eth0")
            self.run("ip", "link", "set", "eth0", "up")
            self.run("ip", "link", "set", "lo", "up")
            if rate is not None:
                shape = ["root", "tbf", "rate", rate, "burst", "64kb", "latency", "100ms"]
                subprocess.run(["tc", "qdisc", "add", "dev", self.veth, *shape], check=True, timeout=20)
                self.run("tc", "qdisc", "add", "dev", "eth0", *shape)
        except (LabError, OSError, subprocess.SubprocessError) as e:
            self.remove()
            raise LabError(f"cannot build host {index}: {e}") from e

    def run(self, *argv: str) -> None:
        """Run a command inside the namespace.

        Raises:
            LabError: it failed.
        """
        _ip("netns", "exec", self.namespace, *argv)

    @property
    def exec_prefix(self) -> list[str]:
        """What runs a command inside the namespace."""
        return [shutil.which("ip") or "/usr/sbin/ip", "netns", "exec", self.namespace]

    def remove(self) -> None:
        """Remove the namespace and the veth pair (idempotent)."""
        _ip("link", "del", self.veth, check=False)
        _ip("netns", "del", self.namespace, check=False)


class NamespacedKuboNode(KuboNode):
    """A Kubo node inside a :class:`Host`: API and swarm on the host's address, nothing on loopback."""

    def __init__(self, repo: Path, host: Host, **kwargs: Any) -> None:
        super().__init__(repo, api_port=API_PORT, swarm_port=SWARM_PORT, **kwargs)
        self.host = host

    @property
    def api_url(self) -> str:
        """The RPC base URL, on the host's address (reached over the veth pair)."""
        return f"http://{self.host.address}:{self.api_port}"

    @property
    def swarm_address(self) -> str:
        """The node's own listen address (unreachable from other hosts: they dial through the relay)."""
        if self.peer_id is None:
            raise self.error("the node has not started yet: its peer id is unknown")
        return f"/ip4/{self.host.address}/tcp/{self.swarm_port}/p2p/{self.peer_id}"

    def listen_ports(self) -> list[int]:
        """None on our loopback: the node listens inside its namespace."""
        return []

    def daemon_argv(self) -> list[str]:
        """``ipfs daemon`` inside the host's namespace."""
        return [*self.host.exec_prefix, str(self.binary), "daemon"]

    def config_settings(self) -> dict[str, Any]:
        """The loopback settings, moved to the host's address."""
        settings = super().config_settings()
        settings["Addresses.API"] = f"/ip4/{self.host.address}/tcp/{self.api_port}"
        settings["Addresses.Swarm"] = [f"/ip4/{self.host.address}/tcp/{self.swarm_port}"]
        return settings

    def identity(self) -> str:
        """The node's peer id, from its repository (initialising it first if needed)."""
        if not (self.repo / "config").exists():
            self.init()
        return str(json.loads((self.repo / "config").read_text())["Identity"]["PeerID"])


class Link:
    """One direction of the relay: host ``source`` reaching host ``target``'s node (see the module docs)."""

    def __init__(self, relay: Relay, source: Host, target: Host, target_port: int) -> None:
        self.source, self.target = source, target
        self.delay = 0.0
        self.jitter = 0.0
        self._relay = relay
        self._target = (target.address, target_port)
        self._stalled_until = 0.0
        self._refusing = False
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener = socket.create_server((source.gateway, 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(
            target=self._accept, name=f"relay-{source.index}-{target.index}", daemon=True
        ).start()

    @property
    def address(self) -> str:
        """The multiaddr (without peer id) by which ``source`` reaches ``target``."""
        return f"/ip4/{self.source.gateway}/tcp/{self.port}"

    @property
    def refusing(self) -> bool:
        """Whether the link refuses new connections (it is down)."""
        return self._refusing

    def stall(self, seconds: float) -> None:
        """Let nothing through for ``seconds`` (connections stay open)."""
        self._stalled_until = time.monotonic() + seconds

    def cut(self) -> None:
        """Close every connection of the link at once."""
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def down(self) -> None:
        """Cut the link and refuse new connections (a partition)."""
        self._refusing = True
        self.cut()

    def up(self) -> None:
        """Accept connections again."""
        self._refusing = False

    def close(self) -> None:
        """Stop listening and cut everything."""
        self._refusing = True
        with contextlib.suppress(OSError):
            self._listener.close()
        self.cut()

    def _accept(self) -> None:
        while not self._relay.closed:
            try:
                inbound, _ = self._listener.accept()
            except OSError:
                return
            if self._refusing:
                inbound.close()
                continue
            try:
                outbound = socket.create_connection(self._target, timeout=5)
            except OSError:
                inbound.close()
                continue
            with self._lock:
                self._sockets.update((inbound, outbound))
            for a, b in ((inbound, outbound), (outbound, inbound)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        """Copy ``source`` to ``sink``, each chunk held until its time (delay, jitter, stalls)."""
        queue: list[tuple[float, int, bytes]] = []
        ready = threading.Condition()
        done = threading.Event()
        last = 0.0
        seq = 0

        def deliver() -> None:
            while True:
                with ready:
                    while not queue and not done.is_set():
                        ready.wait(0.5)
                    if not queue:
                        break
                    due, _, chunk = queue[0]
                wait = max(due, self._stalled_until) - time.monotonic()
                if wait > 0:
                    time.sleep(min(wait, 0.05))
                    continue
                with ready:
                    heapq.heappop(queue)
                try:
                    sink.sendall(chunk)
                except OSError:
                    break
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

        writer = threading.Thread(target=deliver, daemon=True)
        writer.start()
        try:
            while True:
                chunk = source.recv(65536)
                if not chunk:
                    break
                due = max(last, time.monotonic() + self.delay + random.uniform(0, self.jitter))
                last = due
                with ready:
                    heapq.heappush(queue, (due, seq, chunk))
                    seq += 1
                    ready.notify()
        except OSError:
            pass
        finally:
            done.set()
            with ready:
                ready.notify()
            writer.join(10)
            for s in (source, sink):
                with self._lock:
                    self._sockets.discard(s)
                s.close()


class Relay:
    """The links between hosts, each direction its own :class:`Link`."""

    def __init__(self) -> None:
        self.closed = False
        self.links: dict[tuple[int, int], Link] = {}

    def link(self, source: Host, target: Host, target_port: int = SWARM_PORT) -> Link:
        """The link by which ``source`` reaches ``target`` (made on first use)."""
        key = (source.index, target.index)
        if key not in self.links:
            self.links[key] = Link(self, source, target, target_port)
        return self.links[key]

    def between(self, a: Host, b: Host) -> list[Link]:
        """Both directions between two hosts."""
        return [self.link(a, b), self.link(b, a)]

    def set(self, *, delay: float, jitter: float) -> None:
        """Give every link this one-way delay and jitter."""
        for link in self.links.values():
            link.delay, link.jitter = delay, jitter

    def close(self) -> None:
        """Stop every link."""
        self.closed = True
        for link in self.links.values():
            link.close()


class Lab:
    """Hosts, their Kubo nodes and the relay between them; a context manager that removes it all.

    Args:
        root: where the nodes' repositories go.
        hosts: how many hosts.
        rate: each host's bandwidth (``tbf``), e.g. ``"50mbit"``; None for unshaped.
        mesh: which hosts peer with which (pairs of indexes from 0); default: every pair.
    """

    def __init__(
        self,
        root: Path,
        hosts: int,
        *,
        rate: str | None = None,
        mesh: list[tuple[int, int]] | None = None,
    ) -> None:
        if os.geteuid() != 0:
            raise LabError("network namespaces need root")
        _remove_stale()
        self.id = os.getpid()
        self.relay = Relay()
        self.hosts: list[Host] = []
        self.nodes: list[NamespacedKuboNode] = []
        try:
            for i in range(hosts):
                host = Host(self.id, i + 1, rate)
                self.hosts.append(host)
                self.nodes.append(NamespacedKuboNode(root / f"host{i + 1}" / "repo", host))
            pairs = mesh if mesh is not None else [(a, b) for a in range(hosts) for b in range(a + 1, hosts)]
            self.pairs = pairs
            ids = [node.identity() for node in self.nodes]
            peering: dict[int, list[dict[str, Any]]] = {i: [] for i in range(hosts)}
            for a, b in pairs:
                for x, y in ((a, b), (b, a)):
                    link = self.relay.link(self.hosts[x], self.hosts[y])
                    peering[x].append({"ID": ids[y], "Addrs": [link.address]})
            for i, node in enumerate(self.nodes):
                node.extra_config["Peering.Peers"] = peering[i]
                node.write_config()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start every node and connect the peered pairs."""
        for node in self.nodes:
            node.start()
        self.connect()

    def connect(self, timeout: float = 30.0) -> None:
        """Dial every peered pair whose nodes run (through the relay), until connected or ``timeout``."""
        import httpx

        deadline = time.monotonic() + timeout
        for a, b in self.pairs:
            x, y = self.nodes[a], self.nodes[b]
            if not (x.running and y.running) or self.relay.link(x.host, y.host).refusing:
                continue
            target = f"{self.relay.link(x.host, y.host).address}/p2p/{y.peer_id}"
            while True:
                try:
                    answer = httpx.post(
                        f"{x.api_url}/api/v0/swarm/connect", params={"arg": target}, timeout=10
                    )
                    if answer.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise LabError(f"host {a + 1} cannot reach host {b + 1} through the relay")
                time.sleep(0.2)

    def close(self) -> None:
        """Stop the nodes, the relay, and remove the hosts (idempotent)."""
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.stop()
        self.relay.close()
        for host in self.hosts:
            host.remove()

    def links(self) -> Iterator[Link]:
        """Every link of the relay."""
        yield from self.relay.links.values()
