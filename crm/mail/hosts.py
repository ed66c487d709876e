"""Which mail hosts an account may reach.

A host that resolves to a private, loopback, link-local or otherwise non-public address is
refused unless its `host:port` is allow-listed by the admin: otherwise any user could make the
server probe the internal network (SSRF). The check returns the address to connect to, and the
transport connects to exactly that address, so a second DNS answer cannot slip in between.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from crm.mail.errors import HostNotAllowed


@dataclass(frozen=True)
class Endpoint:
    host: str  # the name the user gave (used for TLS certificate checks)
    ip: str  # the checked address we connect to
    port: int


def parse_allowlist(entries) -> set[str]:
    """Normalised `host:port` entries ("*" as port allows any port of that host)."""
    if isinstance(entries, str):
        entries = entries.split(",")
    return {e.strip().lower() for e in entries or () if e and e.strip()}


def _is_public(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return addr.is_global and not addr.is_multicast


def resolve(host: str, port: int, allowlist: set[str]) -> Endpoint:
    """Resolve and check a host; raises HostNotAllowed with a plain reason."""
    host = host.strip().rstrip(".")
    if not host or not 0 < port < 65536:
        raise HostNotAllowed(plain="enter a host name and a port between 1 and 65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise HostNotAllowed(
            plain=f"the host name {host} could not be found", reply=str(exc)
        ) from exc
    allowed = {f"{host.lower()}:{port}", f"{host.lower()}:*"} & allowlist
    for info in infos:
        ip = info[4][0]
        if allowed or _is_public(ip):
            return Endpoint(host=host, ip=ip, port=port)
    raise HostNotAllowed(
        plain=f"{host} is a private or local address; an admin must allow {host}:{port} first"
    )
