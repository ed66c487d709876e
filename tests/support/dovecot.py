"""A private Dovecot IMAP server on free loopback ports, with its own config and users.

Runs `dovecot -F` in the foreground as a child process; mail is Maildir++ under the work dir.
As root, mail is owned by the system user `mail` (Dovecot refuses uid 0). Users can be added
while it runs (the passwd-file is re-read), so each test can take a fresh, empty mailbox.

`Dovecot(workdir, oauth2_introspection_url=URL)` also accepts XOAUTH2 and OAUTHBEARER logins,
asking that RFC 7662 endpoint (tests/support/oauth_provider.py) about each token; the
password passdb is then limited to PLAIN and LOGIN, so a token is never taken for a password.
"""

from __future__ import annotations

import imaplib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

PASSWORD = "secret"
POOL_SIZE = 1500


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Dovecot:
    def __init__(self, workdir: Path, oauth2_introspection_url: str | None = None):
        self.dir = Path(workdir)
        self.oauth2_introspection_url = oauth2_introspection_url
        self.host = "127.0.0.1"
        self.port = free_port()
        self.ssl_port = free_port()
        self.users: list[str] = []
        self._counter = itertools.count(1)
        self.proc: subprocess.Popen | None = None
        self.is_root = os.geteuid() == 0
        if self.is_root:
            mail = pwd.getpwnam("mail")
            self.uid, self.gid = mail.pw_uid, mail.pw_gid
        else:
            self.uid, self.gid = os.getuid(), os.getgid()

    # --- lifecycle -------------------------------------------------------------------
    def start(self, users=("alice", "bob", "carol")) -> Dovecot:
        if shutil.which("dovecot") is None:
            raise RuntimeError("dovecot not installed: apt-get install dovecot-imapd")
        for sub in ("run", "state", "mail", "home", "ssl"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        for sub in ("run", "mail", "home"):
            os.chmod(self.dir / sub, 0o755)
        if self.is_root:
            os.chown(self.dir / "mail", self.uid, self.gid)
            os.chown(self.dir / "home", self.uid, self.gid)
        self._make_cert()
        for user in (*users, *(f"box{n}" for n in range(1, POOL_SIZE + 1))):
            self._add_user_line(user)
        if self.oauth2_introspection_url:
            (self.dir / "oauth2.conf.ext").write_text(self._oauth2_args())
            os.chmod(self.dir / "oauth2.conf.ext", 0o644)
        stale_penalty = self.dir / "run" / "anvil-auth-penalty"
        if stale_penalty.exists():
            stale_penalty.unlink()
        (self.dir / "dovecot.conf").write_text(self._config())
        with open(self.dir / "stderr.log", "wb") as log:
            self.proc = subprocess.Popen(
                ["dovecot", "-F", "-c", str(self.dir / "dovecot.conf")],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.log_tail()}")
            if _port_open(self.port) and _port_open(self.ssl_port):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not start: {self.log_tail()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def log_tail(self, n: int = 30) -> str:
        text = ""
        for name in ("dovecot.log", "stderr.log"):
            p = self.dir / name
            if p.exists():
                text += "\n".join(p.read_text(errors="replace").splitlines()[-n:])
        return text

    # --- users and mail --------------------------------------------------------------
    def new_user(self) -> str:
        """A fresh user with an empty mailbox (password: PASSWORD), from a pool made at start:
        Dovecot does not reliably notice users added to its passwd-file while it runs."""
        n = next(self._counter)
        if n > POOL_SIZE:
            raise RuntimeError(f"more than {POOL_SIZE} fresh mailboxes asked for in one run")
        return f"box{n}"

    def _add_user_line(self, user: str) -> None:
        home = self.dir / "home" / user
        home.mkdir(parents=True, exist_ok=True)
        if self.is_root:
            os.chown(home, self.uid, self.gid)
        with open(self.dir / "users", "a") as fh:
            fh.write(f"{user}:{{PLAIN}}{PASSWORD}::::::\n")
        os.chmod(self.dir / "users", 0o644)
        self.users.append(user)

    def connect(self, user: str) -> imaplib.IMAP4:
        conn = imaplib.IMAP4(self.host, self.port, timeout=30)
        conn.login(user, PASSWORD)
        return conn

    def append(
        self,
        user: str,
        raw: bytes,
        folder: str = "INBOX",
        flags: str = "",
        date: float | None = None,
    ) -> int:
        """APPEND a raw message; returns its UID."""
        conn = self.connect(user)
        try:
            self._ensure_folder(conn, folder)
            when = imaplib.Time2Internaldate(date if date is not None else time.time())
            typ, data = conn.append(_quote(folder), flags or None, when, raw)
            if typ != "OK":
                raise RuntimeError(f"APPEND failed: {data}")
            text = data[0].decode()
            return (
                int(text.split("APPENDUID")[1].split()[1].rstrip("]")) if "APPENDUID" in text else 0
            )
        finally:
            conn.logout()

    def append_many(self, user: str, raws, folder: str = "INBOX") -> None:
        conn = self.connect(user)
        try:
            self._ensure_folder(conn, folder)
            for raw in raws:
                conn.append(_quote(folder), None, None, raw)
        finally:
            conn.logout()

    def deliver_many(self, user: str, raws) -> None:
        """Write messages straight into the user's Maildir INBOX (new/), as a delivery agent
        would, then make Dovecot index them: thousands of messages in a moment, where
        APPEND takes a round trip each."""
        maildir = self.dir / "mail" / user
        for sub in ("tmp", "new", "cur"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)
        stamp = f"{int(time.time())}.R{os.urandom(4).hex()}P{os.getpid()}"  # unique per call
        for n, raw in enumerate(raws):
            name = f"{stamp}M{n}.crmtest,S={len(raw)}"
            (maildir / "tmp" / name).write_bytes(raw)
            os.rename(maildir / "tmp" / name, maildir / "new" / name)
        if self.is_root:
            for path in (maildir, *maildir.rglob("*")):
                os.chown(path, self.uid, self.gid)
        self.doveadm("force-resync", "-u", user, "INBOX")

    def _ensure_folder(self, conn, folder: str) -> None:
        if folder.upper() != "INBOX":
            conn.create(_quote(folder))

    def doveadm(self, *args: str) -> str:
        out = subprocess.run(
            ["doveadm", "-c", str(self.dir / "dovecot.conf"), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"doveadm {args}: {out.stderr}")
        return out.stdout

    def uids(self, user: str, folder: str = "INBOX") -> list[int]:
        conn = self.connect(user)
        try:
            conn.select(_quote(folder), readonly=True)
            _typ, data = conn.uid("SEARCH", None, "ALL")
            return [int(x) for x in data[0].split()]
        finally:
            conn.logout()

    def flags(self, user: str, folder: str = "INBOX") -> dict[int, str]:
        conn = self.connect(user)
        try:
            conn.select(_quote(folder), readonly=True)
            _typ, data = conn.uid("FETCH", "1:*", "(FLAGS)")
            out = {}
            for line in data:
                if line:
                    text = line.decode()
                    uid = int(text.split("UID ")[1].split()[0].rstrip(")"))
                    out[uid] = text.split("FLAGS (")[1].split(")")[0]
            return out
        finally:
            conn.logout()

    # --- config ----------------------------------------------------------------------
    def _make_cert(self) -> None:
        cert, key = self.dir / "ssl" / "cert.pem", self.dir / "ssl" / "key.pem"
        if cert.exists():
            return
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-sha256",
                "-days",
                "3650",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        os.chmod(key, 0o600)

    def _config(self) -> str:
        d = self.dir
        if self.is_root:
            internal = (
                "default_internal_user = dovecot\ndefault_internal_group = dovecot\n"
                "default_login_user = dovenull\n"
            )
            chroot = ""
        else:
            import grp

            me = pwd.getpwuid(os.getuid()).pw_name
            group = grp.getgrgid(os.getgid()).gr_name
            internal = (
                f"default_internal_user = {me}\ndefault_internal_group = {group}\n"
                f"default_login_user = {me}\n"
            )
            chroot = "  chroot =\n"
        return f"""
instance_name = crmtest-{self.port}
base_dir = {d}/run
state_dir = {d}/state
protocols = imap
listen = 127.0.0.1
shutdown_clients = yes
{internal}
first_valid_uid = {self.uid}
last_valid_uid = 0
first_valid_gid = 0
log_path = {d}/dovecot.log
disable_plaintext_auth = no
auth_mechanisms = plain login{self._oauth2_mechanisms()}
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {d}/users{self._password_mechanisms()}
}}{self._oauth2_passdb()}
userdb {{
  driver = passwd-file
  args = username_format=%n {d}/users
  override_fields = uid={self.uid} gid={self.gid} home={d}/home/%n
}}
mail_location = maildir:{d}/mail/%n
mail_max_userip_connections = 200
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
}}
ssl = yes
ssl_cert = <{d}/ssl/cert.pem
ssl_key = <{d}/ssl/key.pem
# No growing delay after failed logins: tests log in with wrong passwords on purpose.
service anvil {{
{chroot}  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
{chroot}  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.ssl_port}
    ssl = yes
  }}
}}
"""

    # --- OAuth2 (only with oauth2_introspection_url) ----------------------------------
    def _oauth2_mechanisms(self) -> str:
        return " xoauth2 oauthbearer" if self.oauth2_introspection_url else ""

    def _password_mechanisms(self) -> str:
        # Without this a bearer token would also be checked as a plaintext password.
        return "\n  mechanisms = plain login" if self.oauth2_introspection_url else ""

    def _oauth2_passdb(self) -> str:
        if not self.oauth2_introspection_url:
            return ""
        return f"""
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {self.dir}/oauth2.conf.ext
}}"""

    def _oauth2_args(self) -> str:
        # Dovecot keeps no auth cache by default: an expired or revoked token fails at once.
        return (
            "introspection_mode = post\n"
            f"introspection_url = {self.oauth2_introspection_url}\n"
            "force_introspection = yes\n"
            "username_attribute = username\n"
            "active_attribute = active\n"
            "active_value = true\n"
            "timeout_msecs = 5000\n"
        )


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
