"""Stand-ins for DNS and the network, so SSRF tests never send anything anywhere."""

from __future__ import annotations

import socket

from cms import outbound


class StubDNS:
    """`outbound.resolve` answering from a table; counts lookups; unknown names fail."""

    def __init__(self, table: dict[str, list[str]]):
        self.table = dict(table)
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.table[host])


class StubTransport:
    """`outbound.connect` that records where a send would go and refuses it: the request
    never leaves the process."""

    def __init__(self):
        self.connections: list[tuple[str, int]] = []

    def __call__(self, address: str, port: int, timeout: float):
        self.connections.append((address, port))
        raise ConnectionRefusedError(f"stub transport: not connecting to {address}:{port}")


def install(monkeypatch, table: dict[str, list[str]]) -> tuple[StubDNS, StubTransport]:
    dns, transport = StubDNS(table), StubTransport()
    monkeypatch.setattr(outbound, "resolve", dns)
    monkeypatch.setattr(outbound, "connect", transport)
    return dns, transport
