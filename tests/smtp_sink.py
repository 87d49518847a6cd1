"""A real SMTP server on 127.0.0.1 for tests: aiosmtpd in a thread, collecting what it receives.

Tests talk to it with the production mailer over a real socket, so every SMTP detail (EHLO,
STARTTLS, AUTH, per-recipient replies, DATA replies) is exercised, not mocked. It can be told to
defer the next DATA (4xx), refuse recipients (5xx) or defer them (4xx) a number of times, require
AUTH, and speak STARTTLS or implicit TLS with a self-signed certificate.

    with SmtpSink() as sink:
        ... SmtpConfig(host=sink.host, port=sink.port) ...
        [received] = sink.messages
        received.message["Subject"]
"""

from __future__ import annotations

import datetime as dt
import email
import ipaddress
import socket
import ssl
import threading
import warnings
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

HOST = "127.0.0.1"


@dataclass
class Received:
    """One accepted message: the envelope as the server saw it and the raw bytes."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool = False  # the session was encrypted (STARTTLS or implicit TLS)

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.content, policy=policy.default)  # type: ignore[return-value]


@dataclass
class _Behaviour:
    defer_data: list[str] = field(default_factory=list)        # replies for the next DATA commands
    reject: dict[str, str] = field(default_factory=dict)        # address -> permanent reply
    defer: dict[str, list[str]] = field(default_factory=dict)   # address -> temporary replies left


class _Handler:
    """aiosmtpd hooks; all state behind one lock since the server runs in its own thread."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list) -> str:
        with self.sink.lock:
            behaviour = self.sink.behaviour
            if address in behaviour.reject:
                return behaviour.reject[address]
            if behaviour.defer.get(address):
                return behaviour.defer[address].pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.sink.lock:
            if self.sink.behaviour.defer_data:
                return self.sink.behaviour.defer_data.pop(0)
            self.sink.messages.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content),
                         tls=server.transport.get_extra_info("ssl_object") is not None)
            )
        return "250 2.0.0 Message accepted"


class _Controller(Controller):
    """Controller that can bind port 0: read the real port before the readiness probe uses it."""

    def factory(self) -> Any:
        with warnings.catch_warnings():  # AUTH over plain text is deliberate in tests
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning)
            return super().factory()

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpSink:
    """A local SMTP server. ``tls`` is ``none``, ``starttls`` or ``ssl`` (needs ``cert``: paths)."""

    def __init__(
        self,
        port: int = 0,
        *,
        auth: tuple[str, str] | None = None,
        tls: str = "none",
        cert: tuple[Path, Path] | None = None,
    ) -> None:
        self.lock = threading.Lock()
        self.messages: list[Received] = []
        self.auth_attempts: list[tuple[str, bool]] = []
        self.behaviour = _Behaviour()
        self._auth = auth
        kwargs: dict[str, Any] = {"server_hostname": "sink.test", "ready_timeout": 5.0}
        if auth:
            # Behind STARTTLS, offer AUTH only once the session is encrypted, as real servers do.
            # (aiosmtpd cannot tell implicit TLS apart from plain text here, so "ssl" cannot.)
            kwargs.update(authenticator=self._authenticate, auth_required=True,
                          auth_require_tls=tls == "starttls")
        if tls != "none":
            if cert is None:
                raise ValueError("TLS needs cert=(cert_path, key_path); see self_signed_cert()")
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*cert)
            if tls == "starttls":
                kwargs.update(tls_context=context, require_starttls=True)
            else:
                kwargs["ssl_context"] = context
        self._controller = _Controller(_Handler(self), hostname=HOST, port=port, **kwargs)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        return self._controller.port

    # -- behaviour ---------------------------------------------------------------------------

    def defer_next_data(self, times: int = 1, reply: str = "451 4.3.0 Temporary failure, try again later") -> None:
        """Answer the next ``times`` DATA commands with a 4xx (nothing is stored)."""
        with self.lock:
            self.behaviour.defer_data.extend([reply] * times)

    def reject_recipient(self, address: str, reply: str | None = None) -> None:
        """Refuse ``address`` at RCPT for good (5xx)."""
        with self.lock:
            self.behaviour.reject[address] = reply or f"550 5.1.1 <{address}>: Recipient address rejected"

    def defer_recipient(self, address: str, times: int = 1, reply: str = "450 4.2.1 Mailbox busy") -> None:
        """Answer RCPT for ``address`` with a 4xx the next ``times`` times."""
        with self.lock:
            self.behaviour.defer.setdefault(address, []).extend([reply] * times)

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert self._auth is not None
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = data.login.decode(), data.password.decode()
        ok = (login, password) == self._auth
        with self.lock:
            self.auth_attempts.append((login, ok))
        return AuthResult(success=ok, handled=False)


def unused_port() -> int:
    """A port on 127.0.0.1 where nothing listens (for "server down"); reusable for a later sink."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for localhost and 127.0.0.1 (needs the ``cryptography`` package).

    Point ``SSL_CERT_FILE`` at the returned cert path so ``ssl.create_default_context()`` in the
    client trusts it, exactly as it would trust a private CA in production.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    san = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "sink-cert.pem", directory / "sink-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path
