"""Calls a local server once with requests and once with httpx, then exits (both instrumentations installed)."""

import http.server
import threading

import httpx
import requests


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_address[1]}/"
assert requests.get(url, timeout=10).status_code == 200
assert httpx.get(url, timeout=10).status_code == 200
server.shutdown()
print("both clients called", flush=True)
