"""Egress guard: which URLs a source may fetch."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


class UrlRefused(ValueError):
    """The URL is outside what the source allows."""


@dataclass(frozen=True)
class UrlGuard:
    """Allows http(s) URLs on the allow-listed hosts and paths.

    Hosts resolving to private, loopback, link-local or reserved addresses are refused unless
    ``allow_private`` is set (the bundled demo site on 127.0.0.1 sets it).
    """

    allowed_hosts: tuple[str, ...]
    include_paths: tuple[str, ...] = ("/",)
    allow_private: bool = False

    def check(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"}:
            raise UrlRefused(f"scheme {parts.scheme!r} not allowed: {url}")
        host = (parts.hostname or "").lower()
        if not host:
            raise UrlRefused(f"no host in {url}")
        if not any(host == h or host.endswith("." + h) for h in self.allowed_hosts):
            raise UrlRefused(f"host {host!r} is not in the allow-list {list(self.allowed_hosts)}")
        if not any(parts.path.startswith(p) for p in self.include_paths):
            raise UrlRefused(f"path {parts.path!r} is outside {list(self.include_paths)}")
        if not self.allow_private:
            for address in _addresses(host):
                if _is_private(address):
                    raise UrlRefused(f"host {host!r} resolves to non-public address {address}")

    def allows(self, url: str) -> bool:
        try:
            self.check(url)
        except UrlRefused:
            return False
        return True


def _addresses(host: str) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        raise UrlRefused(f"cannot resolve {host!r}: {exc}") from exc
    return sorted({info[4][0] for info in infos})


def _is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
    )
