"""A capturing aiosmtpd server on a free loopback port."""

from __future__ import annotations

from aiosmtpd.controller import Controller

from tests.support.dovecot import free_port


class _Capture:
    def __init__(self):
        self.messages: list[dict] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "data": envelope.original_content or envelope.content,
            }
        )
        return "250 OK"


class SmtpServer:
    def __init__(self):
        self.handler = _Capture()
        self.host = "127.0.0.1"
        self.port = free_port()
        self.controller = Controller(self.handler, hostname=self.host, port=self.port)

    @property
    def messages(self) -> list[dict]:
        return self.handler.messages

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
