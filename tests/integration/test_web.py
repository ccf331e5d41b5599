"""TLS and basic auth on the agent's endpoints, with real certificates and sockets."""

from __future__ import annotations

import base64
import http.client
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import yaml
from support import pgradar

from pgradar.agent.runtime.state import AgentState, TargetState
from pgradar.exporters import webconfig
from pgradar.exporters.http import AgentHTTPServer
from pgradar.exporters.prometheus import registry_for

PASSWORD = "scrape-Pa55"


def make_certs(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1, made with openssl."""
    ca_key, ca, key, csr, cert = (folder / n for n in ("ca.key", "ca.crt", "tls.key", "tls.csr", "tls.crt"))
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
        "-days",
        "2",
        "-subj",
        "/CN=pgradar test CA",
    )
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    ext = folder / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    run(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(cert),
        "-days",
        "2",
        "-extfile",
        str(ext),
    )
    return ca, cert, key


@pytest.fixture
def web_files(tmp_path: Path) -> tuple[Path, Path]:
    ca, cert, key = make_certs(tmp_path)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode().replace("$2b$", "$2y$")
    config = tmp_path / "web.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "tls_server_config": {"cert_file": str(cert), "key_file": str(key)},
                "basic_auth_users": {"prometheus": hashed},
            }
        )
    )
    return config, ca


@pytest.fixture
def server(web_files: tuple[Path, Path]) -> Iterator[tuple[AgentHTTPServer, ssl.SSLContext]]:
    config, ca = web_files
    state = AgentState({"main": TargetState("main")})
    srv = AgentHTTPServer(
        "127.0.0.1", 0, registry_for(state, 10), lambda: True, lambda: (True, "ready"), webconfig.load(str(config))
    )
    srv.start()
    yield srv, ssl.create_default_context(cafile=str(ca))
    srv.stop()


def get(
    port: int, path: str, context: ssl.SSLContext, user: str | None = None, password: str = PASSWORD
) -> tuple[int, str]:
    request = urllib.request.Request(f"https://127.0.0.1:{port}{path}")
    if user:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers.get("WWW-Authenticate", "")


def test_tls_and_basic_auth(server: tuple[AgentHTTPServer, ssl.SSLContext]) -> None:
    srv, context = server
    status, body = get(srv.port, "/metrics", context, "prometheus")
    assert status == 200 and 'pgradar_up{target="main"} 0.0' in body
    assert get(srv.port, "/metrics", context) == (401, 'Basic realm="pgradar"')
    assert get(srv.port, "/metrics", context, "prometheus", "wrong")[0] == 401
    assert get(srv.port, "/metrics", context, "someone")[0] == 401
    assert get(srv.port, "/metrics", context, "prometheus")[0] == 200  # remembered, still right
    assert get(srv.port, "/healthz", context) == (200, "ok\n")  # probes need no credentials
    with pytest.raises((OSError, http.client.HTTPException)):  # plain HTTP to a TLS port gets nothing
        urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/healthz", timeout=5).close()


def test_requests_cannot_reach_files(server: tuple[AgentHTTPServer, ssl.SSLContext]) -> None:
    srv, context = server
    for path in ("/../../../etc/passwd", "/metrics/../../etc/passwd", "/%2e%2e/etc/passwd", "/problems.json"):
        status, _ = get(srv.port, path, context, "prometheus")
        assert status == 404, path


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"basic_auth_users": {"p": "plaintext"}}, "basic_auth_users.p: expected a bcrypt hash"),
        ({"tls_server_config": {"cert_file": "a"}}, "tls_server_config.key_file: required"),
        (
            {"tls_server_config": {"cert_file": "a", "key_file": "b", "cipher_suites": []}},
            "tls_server_config.cipher_suites: not supported",
        ),
        ({"http_server_config": {"http2": True}}, "http_server_config: not supported"),
        (
            {
                "tls_server_config": {
                    "cert_file": "a",
                    "key_file": "b",
                    "client_auth_type": "RequireAndVerifyClientCert",
                }
            },
            "client_ca_file: required",
        ),
    ],
)
def test_bad_web_config_is_named(data: dict, message: str) -> None:
    with pytest.raises(webconfig.WebConfigError, match=message):
        webconfig.parse(data)


def test_cli_refuses_a_bad_web_config_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "web.yml"
    config.write_text("tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\n")
    proc = pgradar("run", "--dsn", "host=127.0.0.1", "--web.config.file", str(config), timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "cannot load certificate or key" in proc.stderr
