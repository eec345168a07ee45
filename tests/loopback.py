"""Small HTTP servers on 127.0.0.1 for download tests: ``LoopbackServer`` (files by path, Range requests,
pages instead of files, connections dropped half-way, a delay, a count of the requests per path) and
``HubStandIn`` (the part of the Hugging Face Hub that ``hf_hub_download`` talks to)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote


class LoopbackServer:
    """Serve ``files`` (path -> bytes); ``drop_once`` paths send half the body once and close; ``html`` paths
    answer a web page; ``no_range`` paths ignore Range; ``delay_s`` waits before each answer."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.drop_once: set[str] = set()
        self.html: set[str] = set()
        self.no_range: set[str] = set()
        self.delay_s = 0.0
        self.requests: Counter[str] = Counter()
        self.ranges: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = self.path.split("?")[0]
                server.requests[path] += 1
                time.sleep(server.delay_s)
                if path in server.html:
                    body = b"<!DOCTYPE html><html><head><title>Quota exceeded</title></head></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if path not in server.files:
                    self.send_error(404)
                    return
                data = server.files[path]
                start = 0
                header = self.headers.get("Range")
                if header:
                    server.ranges.append(header)
                if header and path not in server.no_range:
                    start = int(header.removeprefix("bytes=").split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if path in server.drop_once:
                    server.drop_once.discard(path)
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd, self.url = _start(Handler)

    def close(self) -> None:
        _stop(self.httpd)


def _start(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    """Serve ``handler`` on a free 127.0.0.1 port in a daemon thread; returns the server and its URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def _stop(httpd: ThreadingHTTPServer) -> None:
    httpd.shutdown()
    httpd.server_close()


class HubStandIn:
    """``HEAD``/``GET /{owner}/{repo}/resolve/{revision}/{file}`` as the Hub answers them: the file with
    ``ETag`` (its SHA-256, as for LFS files), ``X-Repo-Commit`` and ``Content-Length``, or a 404 whose
    ``X-Error-Code`` (RepoNotFound, RevisionNotFound, EntryNotFound) ``huggingface_hub`` turns into its errors.

    ``add(repo_id, revision, files)`` publishes a commit; the revision name and the commit hash both resolve.
    """

    def __init__(self) -> None:
        self.commits: dict[str, dict[str, tuple[str, dict[str, bytes]]]] = {}
        self.requests: Counter[str] = Counter()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
                self._answer(with_body=False)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._answer(with_body=True)

            def _answer(self, with_body: bool) -> None:
                hub.requests[f"{self.command} {self.path}"] += 1
                status, headers, body = hub.resolve(unquote(self.path.split("?")[0]))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if with_body:
                    self.wfile.write(body)

        self.httpd, self.url = _start(Handler)

    def add(self, repo_id: str, revision: str, files: dict[str, bytes]) -> str:
        """Publish ``files`` as a commit of ``repo_id`` reachable as ``revision``; returns the commit hash."""
        commit = hashlib.sha1(f"{repo_id}@{revision}".encode()).hexdigest()
        refs = self.commits.setdefault(repo_id, {})
        refs[revision] = refs[commit] = (commit, files)
        return commit

    def resolve(self, path: str) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for a request path."""
        owner, repo, resolve, revision, filename = (path.lstrip("/").split("/", 4) + [""] * 5)[:5]
        refs = self.commits.get(f"{owner}/{repo}")
        if resolve != "resolve" or refs is None:
            return 404, {"X-Error-Code": "RepoNotFound"}, b"Repository not found"
        if revision not in refs:
            return 404, {"X-Error-Code": "RevisionNotFound", "X-Error-Message": "Invalid rev id"}, b""
        commit, files = refs[revision]
        if filename not in files:
            return 404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit}, b"Entry not found"
        data = files[filename]
        headers = {
            "Content-Type": "application/octet-stream",
            "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
            "X-Repo-Commit": commit,
        }
        return 200, headers, data

    def close(self) -> None:
        _stop(self.httpd)
