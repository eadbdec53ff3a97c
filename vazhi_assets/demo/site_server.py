"""Serve a built demo site on 127.0.0.1 (``DemoSiteServer``), and the command line to build
or serve it: ``python -m vazhi_assets.demo.site_server build|serve``.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

from vazhi_assets.demo.site_build import build_demo_site, default_site_root
from vazhi_assets.demo.site_manifest import MANIFEST_NAME, Route, SiteManifest
from vazhi_assets.demo.site_render import HTML_UTF8, small_page

_NOT_FOUND = small_page("404 Not Found", "The requested page does not exist.")


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    site: DemoSiteServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (timeouts) are normal here; stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer
    server_version = "VazhiDemoSite/1.0"

    def do_GET(self) -> None:
        self._respond(with_body=True)

    def do_HEAD(self) -> None:
        self._respond(with_body=False)

    def _respond(self, with_body: bool) -> None:
        site = self.server.site
        route = site.route(unquote(urlsplit(self.path).path))
        if route is None:
            status, content_type, body = 404, HTML_UTF8, _NOT_FOUND
        else:
            if route.slow and not site.wait_slow():
                return  # server stopping: drop the connection without an answer
            status, content_type = 200, route.content_type
            body = (site.root / route.file).read_bytes()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if with_body:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = getattr(self, "path", "")  # unset when the request line was malformed
        self.server.site.record(unquote(urlsplit(path).path), int(code))

    def log_message(self, format: str, *args: Any) -> None:
        """No per-request stderr output."""


class DemoSiteServer:
    """Serve a built demo site on ``host:port`` from a daemon thread (a context manager).

    Routes come from ``manifest.json``; unknown paths get 404. Slow routes answer after
    ``slow_seconds`` unless the server is stopped first. ``requests`` logs (path, status) of
    every answered request.
    """

    def __init__(
        self, root: Path, host: str = "127.0.0.1", port: int = 0, slow_seconds: float = 20.0
    ) -> None:
        self.root = Path(root)
        self.host, self.port, self.slow_seconds = host, port, slow_seconds
        self._routes = {r.path: r for r in SiteManifest.load(self.root).routes}
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._log: list[tuple[str, int]] = []
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("DemoSiteServer is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[tuple[str, int]]:
        with self._lock:
            return list(self._log)

    def route(self, path: str) -> Route | None:
        return self._routes.get(path)

    def record(self, path: str, status: int) -> None:
        with self._lock:
            self._log.append((path, status))

    def wait_slow(self) -> bool:
        """Sleep ``slow_seconds``; False if the server is stopped meanwhile."""
        return not self._stopping.wait(self.slow_seconds)

    def start(self) -> DemoSiteServer:
        self._stopping.clear()
        self._httpd = _HttpServer((self.host, self.port), _Handler)
        self._httpd.site = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="demo-site-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; sleeping slow requests are released at once."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> DemoSiteServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# ----------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vazhi_assets.demo.site_server",
        description="Build or serve the bundled demo news site.",
    )
    parser.add_argument("command", choices=("build", "serve"))
    parser.add_argument("--root", type=Path, default=None, help="site dir (default: data dir)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--slow-seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    root = args.root or default_site_root()
    if args.command == "build" or not (root / MANIFEST_NAME).is_file():
        manifest = build_demo_site(root)
        pages = sum(len(s.pages) for s in manifest.sections)
        print(f"built {pages} article pages in {len(manifest.sections)} sections at {root}")
    if args.command == "serve":
        with DemoSiteServer(root, args.host, args.port, args.slow_seconds) as server:
            for section in SiteManifest.load(root).sections:
                print(f"{server.base_url}{section.prefix}")
            print("serving; Ctrl-C or SIGTERM stops", flush=True)
            done = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: done.set())
            try:
                done.wait()
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
