import pytest

from crm.mail.errors import HostNotAllowed
from crm.mail.hosts import parse_allowlist, resolve


def test_loopback_is_refused_unless_allow_listed():
    with pytest.raises(HostNotAllowed, match="private or local"):
        resolve("127.0.0.1", 143, set())
    assert resolve("127.0.0.1", 143, {"127.0.0.1:143"}).ip == "127.0.0.1"


def test_allow_list_entry_is_for_one_port():
    with pytest.raises(HostNotAllowed):
        resolve("127.0.0.1", 993, {"127.0.0.1:143"})


@pytest.mark.parametrize(
    "host", ["localhost", "10.1.2.3", "192.168.0.1", "169.254.169.254", "::1", "0.0.0.0"]
)
def test_private_and_link_local_hosts_are_refused(host):
    with pytest.raises(HostNotAllowed):
        resolve(host, 993, set())


def test_public_address_is_allowed_and_pinned():
    endpoint = resolve("8.8.8.8", 993, set())
    assert (endpoint.host, endpoint.ip, endpoint.port) == ("8.8.8.8", "8.8.8.8", 993)


def test_unknown_host_gives_a_plain_reason():
    with pytest.raises(HostNotAllowed, match="could not be found"):
        resolve("no-such-host.invalid", 993, set())


def test_allowlist_parsing():
    assert parse_allowlist("Mail.Local:143, 127.0.0.1:*,") == {"mail.local:143", "127.0.0.1:*"}
    assert parse_allowlist(["a:1"]) == {"a:1"}
