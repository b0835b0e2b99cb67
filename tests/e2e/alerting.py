"""What the alert tests share: a real SMTP listener on loopback, the Airflow connection that mails it, and the
alert lines of a log."""

from __future__ import annotations

import email
import json
import socketserver
import threading
from pathlib import Path

from sparkify.alerts import ALERT_PREFIX


class SmtpSink(socketserver.ThreadingTCPServer):
    """Just enough SMTP to accept mail and keep each message's text."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        self.messages: list[str] = []

    @property
    def port(self) -> int:
        return self.server_address[1]


class _SmtpHandler(socketserver.StreamRequestHandler):
    def reply(self, text: str) -> None:
        self.wfile.write(f"{text}\r\n".encode())

    def handle(self) -> None:
        self.reply("220 sink ESMTP")
        while line := self.rfile.readline():
            command = line.decode(errors="replace").strip().upper()
            if command.startswith(("EHLO", "HELO")):
                self.reply("250 sink")
            elif command == "DATA":
                self.reply("354 end with .")
                body = []
                while (data := self.rfile.readline().decode(errors="replace")) not in (".\r\n", ".\n", ""):
                    body.append(data)
                self.server.messages.append("".join(body))  # type: ignore[attr-defined]
                self.reply("250 queued")
            elif command == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 ok")


def serve(server: socketserver.BaseServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


def alert_connection(sink: SmtpSink) -> str:
    """``AIRFLOW_CONN_<ID>`` for an SMTP connection that sends the alerts to ``sink``."""
    return json.dumps(
        {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": sink.port,
            "extra": {
                "disable_ssl": True,
                "disable_tls": True,
                "from_email": "airflow@sparkify.test",
                "to": "oncall@sparkify.test",
            },
        }
    )


def alert_lines(log: Path) -> list[dict]:
    """The alerts in a task log (Airflow writes one JSON object per line; the message is its "event")."""
    alerts = []
    for line in log.read_text().splitlines():
        try:
            event = str(json.loads(line).get("event", ""))
        except ValueError:
            event = line
        if event.startswith(ALERT_PREFIX):
            alerts.append(json.loads(event.removeprefix(ALERT_PREFIX)))
    return alerts


def mail_text(message: str) -> str:
    """A received message's subject and decoded text parts."""
    parsed = email.message_from_string(message)
    parts = [str(parsed["Subject"])]
    for part in parsed.walk():
        if part.get_content_maintype() == "text":
            parts.append(part.get_payload(decode=True).decode(errors="replace"))
    return "\n".join(parts)
