"""The network sink's server: run inside the sink container, never imported by the bot.

The test run shares this container's network namespace, which has nothing but loopback. Every
DNS question is answered with 127.0.0.1 (``dnslib``'s server, the maintained part), so a
connection to any host name comes back here; ports 80, 443, 21, 22 and 25 accept it, read
what the client sends for a moment, and close it without a byte of answer. Each lookup and
each connection is one JSON line on stdout, which the bot reads back when the run is over:
the name asked for, or the port, how many bytes were sent and the first of them (and, for
plain HTTP, the Host header). What is recorded is written by the code under test: the bot
treats it as hostile input (:mod:`bot.sandbox.netsink`).

Only privileged ports are taken, so a test that starts its own server on 8080 or 5000 finds
the port free. Standard library and dnslib only; Python 3.9 and later.
"""

import base64
import json
import socketserver
import sys
import threading
import time
from typing import Any

from dnslib import QTYPE, RR, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer

TCP_PORTS = (80, 443, 21, 22, 25)
EVERYWHERE = "0.0.0.0"  # noqa: S104 - the namespace has nothing but loopback
MAX_RECORDS = 500
READ_BYTES = 65536
HEAD_BYTES = 2048  # what is kept of each connection's bytes, for the canary search
READ_SECONDS = 2.0
_lock = threading.Lock()
_count = [0]


def record(**fields: object) -> None:
    with _lock:
        if _count[0] >= MAX_RECORDS:
            return
        _count[0] += 1
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()


class Resolver(BaseResolver):  # type: ignore[misc]
    """Every name is 127.0.0.1; the question is the record."""

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".")
        kind = QTYPE.get(request.q.qtype, str(request.q.qtype))
        record(kind="dns", name=name[:300], type=str(kind)[:10])
        if request.q.qtype == QTYPE.A:
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A("127.0.0.1"), ttl=1))
        return reply


class Catch(socketserver.BaseRequestHandler):
    """Read what the client sends, for a moment and a bounded amount; answer nothing."""

    def handle(self) -> None:
        port = self.request.getsockname()[1]
        self.request.settimeout(READ_SECONDS)
        received = b""
        deadline = time.monotonic() + READ_SECONDS
        try:
            while len(received) < READ_BYTES and time.monotonic() < deadline:
                chunk = self.request.recv(READ_BYTES - len(received))
                if not chunk:
                    break
                received += chunk
        except OSError:
            pass
        record(kind="tcp", port=port, bytes=len(received), host=_http_host(received)[:300],
               head=base64.b64encode(received[:HEAD_BYTES]).decode())


def _http_host(data: bytes) -> str:
    """The Host header of a plain HTTP request, else ''."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "host":
            return value.strip()
    return ""


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def point_resolver_here() -> None:
    """Name this namespace's own server in /etc/resolv.conf, which the test container joined
    to this one shares; the engine may have written an outside resolver there."""
    try:
        with open("/etc/resolv.conf", "w") as resolv:
            resolv.write("nameserver 127.0.0.1\noptions timeout:2 attempts:1\n")
    except OSError as exc:
        sys.stderr.write(f"could not write /etc/resolv.conf: {exc}\n")


def main() -> None:
    point_resolver_here()
    quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
    for tcp in (False, True):
        DNSServer(Resolver(), port=53, address=EVERYWHERE, tcp=tcp, logger=quiet).start_thread()
    for port in TCP_PORTS:
        server = Server((EVERYWHERE, port), Catch)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    record(kind="ready")
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
