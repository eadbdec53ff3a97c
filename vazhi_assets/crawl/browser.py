"""A headless Debian chromium that crawl4ai drives over the DevTools protocol."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class BrowserUnavailable(RuntimeError):
    """No usable chromium binary."""


def find_chromium() -> str:
    """Path of the chromium binary: ``VAZHI_CHROMIUM`` or the first one on PATH."""
    explicit = os.environ.get("VAZHI_CHROMIUM")
    if explicit:
        if not Path(explicit).exists():
            raise BrowserUnavailable(f"VAZHI_CHROMIUM={explicit} does not exist")
        return explicit
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    raise BrowserUnavailable(
        "no chromium found; install Debian's browser with `apt-get install -y chromium` "
        "(`make setup` does this) or set VAZHI_CHROMIUM to a chromium binary"
    )


def host_resolver_rules(allowed_hosts: list[str]) -> str:
    """Chromium resolver rules that make every host but the allowed ones unresolvable.

    This confines the browser itself (sub-resources, update pings), not only the crawler's
    frontier.
    """
    excludes = " , ".join(f"EXCLUDE {h}" for h in allowed_hosts)
    return "MAP * ~NOTFOUND" + (f" , {excludes}" if excludes else "")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ChromiumProcess:
    """Start chromium with remote debugging on 127.0.0.1; ``cdp_url`` is what crawl4ai needs."""

    def __init__(self, allowed_hosts: list[str], startup_timeout_s: float = 20.0) -> None:
        self.allowed_hosts = allowed_hosts
        self.startup_timeout_s = startup_timeout_s
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._profile: str | None = None

    @property
    def cdp_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ChromiumProcess:
        binary = find_chromium()
        self._profile = tempfile.mkdtemp(prefix="vazhi-chromium-")
        args = [
            binary,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--remote-debugging-address=127.0.0.1",
            f"--remote-debugging-port={self.port}",
            f"--user-data-dir={self._profile}",
            f"--host-resolver-rules={host_resolver_rules(self.allowed_hosts)}",
            "about:blank",
        ]
        self._process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrowserUnavailable(f"{binary} exited with code {self._process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.cdp_url}/json/version", timeout=1) as resp:
                    json.load(resp)
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise BrowserUnavailable(f"{binary} did not open its DevTools port within "
                                 f"{self.startup_timeout_s:.0f} s")

    def stop(self) -> None:
        """Stop chromium and all its helper processes, then remove the throwaway profile."""
        if self._process is not None:
            self._signal_group(signal.SIGTERM)
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self._process.wait(timeout=5)
            self._signal_group(signal.SIGKILL)  # helpers that outlived the browser process
            self._process = None
        if self._profile is not None:
            # helpers may still be flushing into the profile: never let cleanup fail a crawl
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None

    def _signal_group(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self._process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def __enter__(self) -> ChromiumProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
