"""TLS and basic auth for the HTTP endpoints, in the Prometheus exporter format.

``--web.config.file`` takes the same YAML every Prometheus exporter takes
(exporter-toolkit's web configuration), so one file and one habit serve the
whole fleet::

    tls_server_config:
      cert_file: /etc/pgradar/tls.crt
      key_file: /etc/pgradar/tls.key
      client_ca_file: /etc/pgradar/ca.crt          # optional: verify clients
      client_auth_type: RequireAndVerifyClientCert  # optional
      min_version: TLS12                            # optional
    basic_auth_users:
      prometheus: $2y$10$...                        # bcrypt hash (htpasswd -nBC 10)

Keys pgradar does not implement are refused by name rather than ignored: a
security setting that silently does nothing is worse than an error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any

import bcrypt

from pgradar.agent.settings.config import ConfigError, read_yaml

CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
_TLS_KEYS = {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version", "max_version"}
_BCRYPT_PREFIXES = (b"$2a$", b"$2b$", b"$2y$")


class WebConfigError(ConfigError):
    """A bad web configuration file; the message names the key."""


@dataclass(frozen=True, slots=True)
class TLSConfig:
    cert_file: str
    key_file: str
    client_ca_file: str | None = None
    client_auth_type: str = "NoClientCert"
    min_version: str = "TLS12"
    max_version: str | None = None


@dataclass(frozen=True, slots=True)
class WebConfig:
    tls: TLSConfig | None = None
    users: dict[str, bytes] = field(default_factory=dict)  # name -> bcrypt hash

    @property
    def auth_required(self) -> bool:
        return bool(self.users)


def _tls(raw: Any, where: str) -> TLSConfig:
    if not isinstance(raw, dict):
        raise WebConfigError(f"{where}: expected a mapping")
    unknown = sorted(set(raw) - _TLS_KEYS)
    if unknown:
        supported = ", ".join(sorted(_TLS_KEYS))
        raise WebConfigError(f"{where}.{unknown[0]}: not supported by pgradar (supported: {supported})")
    for key in ("cert_file", "key_file"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise WebConfigError(f"{where}.{key}: required")
    auth = raw.get("client_auth_type", "NoClientCert")
    if auth not in CLIENT_AUTH:
        raise WebConfigError(f"{where}.client_auth_type: expected one of {', '.join(CLIENT_AUTH)}, got {auth!r}")
    if auth == "RequireAndVerifyClientCert" and not raw.get("client_ca_file"):
        raise WebConfigError(f"{where}.client_ca_file: required with client_auth_type {auth}")
    for key in ("min_version", "max_version"):
        if key in raw and raw[key] not in TLS_VERSIONS:
            raise WebConfigError(f"{where}.{key}: expected one of {', '.join(TLS_VERSIONS)}, got {raw[key]!r}")
    return TLSConfig(
        raw["cert_file"],
        raw["key_file"],
        raw.get("client_ca_file"),
        auth,
        raw.get("min_version", "TLS12"),
        raw.get("max_version"),
    )


def _users(raw: Any, where: str) -> dict[str, bytes]:
    if not isinstance(raw, dict):
        raise WebConfigError(f"{where}: expected a mapping of user name to bcrypt hash")
    users = {}
    for name, hashed in raw.items():
        encoded = str(hashed).encode()
        if not encoded.startswith(_BCRYPT_PREFIXES):
            raise WebConfigError(f"{where}.{name}: expected a bcrypt hash ($2y$...), not a plain password")
        users[str(name)] = encoded
    return users


def parse(data: Any, source: str = "web config") -> WebConfig:
    if data is None:
        return WebConfig()
    if not isinstance(data, dict):
        raise WebConfigError(f"{source}: the top level must be a mapping")
    unknown = sorted(set(data) - {"tls_server_config", "basic_auth_users"})
    if unknown:
        raise WebConfigError(
            f"{source}: {unknown[0]}: not supported by pgradar (supported: tls_server_config, basic_auth_users)"
        )
    tls = _tls(data["tls_server_config"], "tls_server_config") if "tls_server_config" in data else None
    users = _users(data["basic_auth_users"], "basic_auth_users") if "basic_auth_users" in data else {}
    return WebConfig(tls, users)


def load(path: str) -> WebConfig:
    config = parse(read_yaml(path, "--web.config.file"), path)
    if config.tls is not None:
        ssl_context(config.tls)  # fail at start, naming the file, not at the first request
    return config


def ssl_context(tls: TLSConfig) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = TLS_VERSIONS[tls.min_version]
    if tls.max_version:
        context.maximum_version = TLS_VERSIONS[tls.max_version]
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
        if tls.client_ca_file:
            context.load_verify_locations(tls.client_ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise WebConfigError(f"tls_server_config: cannot load certificate or key: {exc}") from None
    context.verify_mode = CLIENT_AUTH[tls.client_auth_type]
    return context


class BasicAuth:
    """Checks ``Authorization: Basic`` headers against bcrypt hashes.

    bcrypt is slow on purpose (tens of milliseconds); a scrape every few
    seconds would pay it each time, so a successful check is remembered by a
    keyed digest of the credentials (never the password itself), as
    exporter-toolkit does.
    """

    def __init__(self, users: dict[str, bytes]) -> None:
        self._users = users
        self._key = hashlib.sha256(b"".join(users.values())).digest()
        self._verified: set[bytes] = set()
        self._lock = threading.Lock()

    def allows(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        hashed = self._users.get(user)
        if hashed is None:
            return False
        token = hmac.new(self._key, f"{user}\0{password}".encode(), hashlib.sha256).digest()
        with self._lock:
            if token in self._verified:
                return True
        if not bcrypt.checkpw(password.encode(), hashed):
            return False
        with self._lock:
            self._verified.add(token)
        return True
