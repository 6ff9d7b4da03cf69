"""One NATS URL setting for one server or a cluster: the servers without credentials, the credentials once."""

from shared.runtime import bus


def test_a_cluster_url_gives_every_server_bare_and_the_first_servers_login() -> None:
    url = "tls://gateway:p%40ss@nats-0:4222,tls://nats-1:4222,tls://gateway:p%40ss@nats-2:4222"
    assert bus.bare_servers(url) == ["tls://nats-0:4222", "tls://nats-1:4222", "tls://nats-2:4222"]
    assert bus.credentials(url) == ("gateway", "p@ss")
    assert bus.inbox_prefix(url) == "_INBOX_gateway"


def test_a_url_without_a_login_has_no_credentials_and_the_shared_inbox() -> None:
    url = "nats://127.0.0.1:4222"
    assert bus.bare_servers(url) == [url]
    assert bus.credentials(url) is None
    assert bus.inbox_prefix(url) == "_INBOX"
