"""Fetching URL assets: only from public addresses, checked after resolving and again on every
redirect, before anything is sent. No network: host names are resolved by a stand-in, and
the only server is on loopback."""
from __future__ import annotations

import http.server
import ipaddress
import socket
import threading

import pytest

from wanflow.errors import MediaError
from wanflow.run import local
from wanflow.spec import urls


class _Server(http.server.ThreadingHTTPServer):
    def __init__(self, routes):
        self.routes, self.seen = routes, []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.seen.append(self.path)
        status, headers, body = self.server.routes.get(self.path, (404, {}, b""))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = _Server({})
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def names(monkeypatch):
    """A resolver for made-up names: name -> list of addresses (anything else fails)."""
    table: dict[str, list[str]] = {}

    # Only host and port matter here; family, type, proto and flags may come by position or
    # by keyword (the client passes `type=`), so they are taken and ignored either way.
    def getaddrinfo(host, port, *_ignored, **_ignored_by_name):
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "unknown name")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port)) for a in table[host]]
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


@pytest.fixture
def loopback_is_public(monkeypatch):
    """Let the test server stand in for a public host (and only 127.0.0.1)."""
    real = urls.refusal
    monkeypatch.setattr(urls, "refusal", lambda ip: None if str(ip) == "127.0.0.1" else real(ip))


def test_a_name_that_resolves_to_loopback_is_refused_before_connecting(server, names, tmp_path):
    names["assets.example.test"] = ["127.0.0.1"]
    url = f"http://assets.example.test:{server.server_port}/voice.wav"
    with pytest.raises(MediaError, match=r"resolves to 127\.0\.0\.1 \(loopback\)"):
        local.fetch(url, str(tmp_path / "out"))
    assert server.seen == []


@pytest.mark.parametrize("addresses", [["10.1.2.3"], ["93.184.216.34", "169.254.169.254"],
                                       ["::ffff:192.168.0.9"], ["fd00::1"]])
def test_a_name_that_resolves_inward_is_refused_whole(names, tmp_path, addresses):
    names["cdn.example.test"] = addresses
    with pytest.raises(MediaError, match="asset URLs must name a public host"):
        local.fetch("https://cdn.example.test/still.png", str(tmp_path / "out"))


def test_literal_inward_hosts_are_refused_unresolved(tmp_path, monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: pytest.fail("resolved"))
    for url in ("http://127.1/x.wav", "http://[::1]/x.wav", "http://localhost/x.wav",
                "http://169.254.169.254/x.png", "file:///etc/passwd"):
        with pytest.raises(MediaError):
            local.fetch(url, str(tmp_path / "out"))


def test_a_redirect_inward_is_refused_before_it_is_followed(server, names, loopback_is_public,
                                                           tmp_path):
    port = server.server_port
    names["public.example.test"] = ["127.0.0.1"]
    names["internal.example.test"] = ["10.9.8.7"]
    server.routes["/a.wav"] = (302, {"Location": f"http://internal.example.test:{port}/x"}, b"")
    server.routes["/b.wav"] = (302, {"Location": "file:///etc/passwd"}, b"")
    with pytest.raises(MediaError, match=r"resolves to 10\.9\.8\.7 \(private\)"):
        local.fetch(f"http://public.example.test:{port}/a.wav", str(tmp_path / "out"))
    with pytest.raises(MediaError, match="not allowed"):
        local.fetch(f"http://public.example.test:{port}/b.wav", str(tmp_path / "out"))
    assert server.seen == ["/a.wav", "/b.wav"]


def test_a_public_host_is_fetched_redirects_included(server, names, loopback_is_public,
                                                     tmp_path):
    port = server.server_port
    names["public.example.test"] = ["127.0.0.1"]
    server.routes["/a.wav"] = (302, {"Location": "/b.wav"}, b"")
    server.routes["/b.wav"] = (200, {}, b"RIFF....WAVE")
    local.fetch(f"http://public.example.test:{port}/a.wav", str(tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == b"RIFF....WAVE"


def test_refusal_kinds():
    assert urls.refusal(ipaddress.ip_address("8.8.8.8")) is None
    assert urls.refusal(ipaddress.ip_address("100.64.0.1")) == "non-public"
    assert urls.literal_address("0x7f.1") == ipaddress.ip_address("127.0.0.1")
    assert urls.literal_address("cdn.example.com") is None
