"""SMTP delivery and MIME composition for outbox mails.

Nothing here reads the archive: ``build_message`` turns a stored outbox row into an
``EmailMessage``, ``send_message`` hands it to one SMTP server, ``describe_error`` turns a failure
into a one-line reason that is safe to store and log (the password never appears in it).
"""

from __future__ import annotations

import base64
import re
import smtplib
import socket
import ssl
import unicodedata
from collections.abc import Iterable, Mapping
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import TYPE_CHECKING, Any

from db.outbox import parse_stamp

if TYPE_CHECKING:
    from defwatch.config import SmtpConfig

SECURITY_MODES = ("none", "starttls", "ssl")
HEADER_LIMIT = 200
# C0/C1 controls and the Unicode line/paragraph separators: anything a mail client or a
# header parser could read as a line break.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u0085]+")
_TEXT_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u0085]")

Refused = dict[str, tuple[int, str]]
# Non-ASCII bodies go out quoted-printable or base64, never raw 8bit: smtplib does not ask for
# 8BITMIME, and a relay without it may mangle or bounce 8bit data.
MAIL_POLICY = policy.default.clone(cte_type="7bit")


def sanitize_header(text: str | None, limit: int = HEADER_LIMIT) -> str:
    """Make scraped text safe for a header: one line, no control characters, at most ``limit`` chars.

    Collapsing rather than rejecting keeps the alert flowing when a page has a bad title; the
    email package would otherwise raise on a CR/LF, and a raw one would let the page add headers.
    """
    text = unicodedata.normalize("NFC", text or "")
    text = " ".join(_CONTROLS.sub(" ", text).split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def clean_text(text: str | None) -> str:
    """Scraped text for a body part: normal newlines, no control characters."""
    text = unicodedata.normalize("NFC", text or "").replace("\r\n", "\n").replace("\r", "\n")
    return _TEXT_CONTROLS.sub(" ", text)


def check_address(address: str) -> str:
    """Refuse a configured address that is empty or could smuggle a header line."""
    if not address or _CONTROLS.search(address) or "@" not in parseaddr(address)[1]:
        raise ValueError(f"not a usable mail address: {address!r}")
    return address


def build_message(mail: Mapping[str, Any]) -> EmailMessage:
    """The MIME message for an outbox row; the same row always gives the same message.

    ``Date`` is the queue time and ``Message-ID`` the stored one, so a retry is byte-for-byte
    the mail that was meant to leave first, and receivers can drop a duplicate by its ID.
    """
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["Subject"] = sanitize_header(mail["subject"], limit=998)
    msg["From"] = check_address(mail["sender"])
    msg["To"] = ", ".join(check_address(a) for a in mail["recipients"])
    msg["Date"] = format_datetime(parse_stamp(mail["created_at"]))
    msg["Message-ID"] = mail["message_id"]
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    msg["X-Defwatch-Kind"] = mail["kind"]
    msg.set_content(mail["body_text"])
    if mail.get("body_html"):
        msg.add_alternative(mail["body_html"], subtype="html")
    return msg


def send_message(msg: EmailMessage, smtp: SmtpConfig) -> Refused:
    """Deliver ``msg`` to the addresses in its headers; return the recipients the server refused.

    Like smtplib, a partial refusal is returned, not raised; unlike smtplib a refusal of *every*
    recipient is returned too, so the caller has one place to sort 4xx from 5xx per address.
    Any other failure raises. QUIT happens after the server has accepted the data, so a failing
    QUIT is ignored: reporting it would make the caller send an already delivered mail again.
    """
    conn = _connect(smtp)
    try:
        _prepare(conn, smtp)
        try:
            refused = conn.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients
    finally:
        _close_quietly(conn)
    return {addr: (code, _text(reply)) for addr, (code, reply) in refused.items()}


def _connect(smtp: SmtpConfig) -> smtplib.SMTP:
    """Open the connection in the configured mode; never fall back to plain text on its own."""
    if smtp.security not in SECURITY_MODES:
        raise ValueError(f"SMTP security must be one of {', '.join(SECURITY_MODES)}, not {smtp.security!r}")
    local = "localhost"  # our EHLO name: getfqdn() can stall on DNS where there is no network
    if smtp.security == "ssl":
        context = ssl.create_default_context()
        return smtplib.SMTP_SSL(smtp.host, smtp.port, local_hostname=local, timeout=smtp.timeout,
                                context=context)
    return smtplib.SMTP(smtp.host, smtp.port, local_hostname=local, timeout=smtp.timeout)


def _prepare(conn: smtplib.SMTP, smtp: SmtpConfig) -> None:
    conn.ehlo()
    if smtp.security == "starttls":
        # Raises SMTPNotSupportedError when the server does not offer STARTTLS.
        conn.starttls(context=ssl.create_default_context())
        conn.ehlo()
    if smtp.user:
        conn.login(smtp.user, smtp.password or "")


def _close_quietly(conn: smtplib.SMTP) -> None:
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def format_refused(refused: Refused) -> str:
    """``addr: 550 reason; ...`` for last_error."""
    return "; ".join(f"{addr}: {code} {reply}" for addr, (code, reply) in sorted(refused.items()))


def describe_error(exc: BaseException, smtp: SmtpConfig) -> str:
    """A one-line reason for last_error and the log, with every form of the password masked."""
    where = f"{smtp.host}:{smtp.port}"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        text = f"authentication as {smtp.user!r} failed at {where}: {exc.smtp_code} {_text(exc.smtp_error)}"
    elif isinstance(exc, smtplib.SMTPNotSupportedError):
        text = f"{where} (security={smtp.security}): {exc}"
    elif isinstance(exc, smtplib.SMTPResponseException):
        text = f"{where} answered {exc.smtp_code} {_text(exc.smtp_error)}"
    elif isinstance(exc, smtplib.SMTPServerDisconnected):
        text = f"{where} closed the connection: {exc}"
    elif isinstance(exc, ssl.SSLError):
        hint = "implicit TLS, usually port 465" if smtp.security == "ssl" else "STARTTLS"
        text = (f"TLS with {where} failed (security={smtp.security}): {exc.reason or exc};"
                f" is this port really {hint}?")
    elif isinstance(exc, (socket.timeout, TimeoutError)):
        text = f"no answer from {where} within {smtp.timeout:g} s"
    elif isinstance(exc, OSError):
        text = f"cannot connect to {where} (security={smtp.security}): {exc.strerror or exc}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return redact(sanitize_header(text, limit=1000), smtp)


def redact(text: str, smtp: SmtpConfig) -> str:
    """Mask the SMTP password in any text bound for the outbox or the log."""
    return scrub(text, _secret_forms(smtp))


def _secret_forms(smtp: SmtpConfig) -> list[str]:
    """The password as typed and as it travels in AUTH PLAIN/LOGIN, any of which a server may echo."""
    if not smtp.password:
        return []
    raw = smtp.password.encode()
    plain = b"\0" + (smtp.user or "").encode() + b"\0" + raw
    return [smtp.password, base64.b64encode(raw).decode(), base64.b64encode(plain).decode()]


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Mask each secret in ``text``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
