"""SASL initial responses for OAuth 2.0 bearer tokens: Google's XOAUTH2 and RFC 7628's
OAUTHBEARER. Pure functions; the token is a secret and never appears in an error or a log."""

from __future__ import annotations


def _check(user: str, token: str) -> None:
    # \x01 separates the fields of both formats: a user or token holding one could smuggle
    # in another field.
    if not user or not token or "\x01" in user or "\x01" in token:
        raise ValueError("a login name and an access token without control characters are needed")


def xoauth2(user: str, token: str) -> str:
    """The XOAUTH2 initial client response, before base64:
    "user=" user ^A "auth=Bearer " token ^A ^A (developers.google.com/gmail/imap/xoauth2-protocol)."""
    _check(user, token)
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def oauthbearer(user: str, token: str, host: str = "", port: int | None = None) -> str:
    """The OAUTHBEARER initial client response of RFC 7628 3.1: a GS2 header naming the
    authorisation identity ("n,a=user,"), then key-value pairs separated by ^A."""
    _check(user, token)
    # RFC 5801 5.1: "," and "=" in the authzid are escaped as =2C and =3D.
    authzid = user.replace("=", "=3D").replace(",", "=2C")
    pairs = [f"host={host}"] if host else []
    if port:
        pairs.append(f"port={port}")
    pairs.append(f"auth=Bearer {token}")
    return f"n,a={authzid},\x01" + "".join(p + "\x01" for p in pairs) + "\x01"
