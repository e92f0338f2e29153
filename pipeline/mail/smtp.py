"""Handing one message to the SMTP relay of ``SmtpSettings``: acknowledgments and replies to citizens."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from pipeline.mail.settings import Security, SmtpSettings


def send_message(msg: EmailMessage, settings: SmtpSettings) -> None:
    """Send ``msg`` through the relay (TLS, STARTTLS or plain as configured; login when a user is set).

    Raises:
        smtplib.SMTPException, OSError: the relay refused or could not be reached; callers translate
            them into their own ``MailboxError`` with what was being sent (never the password).
    """
    host, port = settings.host, settings.resolved_port
    context = ssl.create_default_context()
    if settings.security is Security.ssl:
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=settings.timeout_seconds, context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=settings.timeout_seconds)
    with smtp:
        if settings.security is Security.starttls:
            smtp.starttls(context=context)
        password = settings.password_value()
        if settings.user and password:
            smtp.login(settings.user, password)
        smtp.send_message(msg)
