"""Mail errors keep the server's own reply."""


class MailError(Exception):
    """Base of mail errors; `plain` is the sentence a user sees."""

    plain = "mail error"

    def __init__(self, message: str = "", *, plain: str | None = None, reply: str | None = None):
        super().__init__(message or plain or self.plain)
        if plain:
            self.plain = plain
        self.reply = reply


class ImapError(MailError):
    plain = "the mail server answered with an error"


class SmtpError(MailError):
    plain = "the mail server refused the message"


class ParseError(MailError):
    plain = "the message could not be read"


class HostNotAllowed(MailError):
    plain = "this host is not allowed"
