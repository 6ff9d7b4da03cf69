"""Connecting to NATS as one bus user: replies come to that user's own inbox prefix, never to `_INBOX`.

The server lets each user subscribe only to `_INBOX_<user>.>` (`bus_permissions`), so answers to
requests and JetStream API responses addressed to one user cannot be read with another's credential.
"""

import urllib.parse
from typing import Any

import nats
import structlog
from nats.aio.client import Client

log = structlog.get_logger(__name__)

DEFAULT_INBOX = "_INBOX"
# A server that stops answering (a node cut off from the network, a frozen process) is given up on after two
# unanswered pings two seconds apart, and the client moves to another server of the cluster; nats-py's default
# (two minutes between pings) would leave every request through that connection hanging meanwhile.
LIVENESS: dict[str, Any] = {"ping_interval": 2, "max_outstanding_pings": 2}


async def said_by_the_server(error: Exception) -> None:
    """What the server says went wrong on a connection, where the operators look: a permissions violation names
    the subject a user may not publish to, which the publisher itself only sees as a request timing out."""
    log.warning("bus_error", error=str(error) or type(error).__name__)


def servers(nats_url: str) -> list[str]:
    return nats_url.split(",")


def bus_user(nats_url: str) -> str | None:
    """The user named in the (first) server URL, as the servers know it."""
    return urllib.parse.urlsplit(servers(nats_url)[0]).username or None


def inbox_prefix_of(user: str) -> str:
    return f"{DEFAULT_INBOX}_{user}"


def inbox_prefix(nats_url: str) -> str:
    user = bus_user(nats_url)
    return inbox_prefix_of(user) if user else DEFAULT_INBOX


def bare_servers(nats_url: str) -> list[str]:
    """The URL's servers without credentials: those go with the connection (`credentials`), not with each
    server, because a cluster's servers announce one another without them and a client reconnecting to an
    announced server must still log in as itself."""
    found = [urllib.parse.urlsplit(url) for url in servers(nats_url)]
    return [url._replace(netloc=url.netloc.rpartition("@")[2]).geturl() for url in found]


def credentials(nats_url: str) -> tuple[str, str] | None:
    """The user and password of the (first) server URL, if it names them."""
    first = urllib.parse.urlsplit(servers(nats_url)[0])
    if first.username and first.password:
        return urllib.parse.unquote(first.username), urllib.parse.unquote(first.password)
    return None


async def connect(nats_url: str, *, name: str, **options: Any) -> Client:
    """A connection as the URL's user, with that user's inbox prefix, to any of the URL's servers."""
    login = credentials(nats_url)
    if login is not None:
        options |= {"user": login[0], "password": login[1]}
    return await nats.connect(
        bare_servers(nats_url),
        name=name,
        inbox_prefix=inbox_prefix(nats_url),
        **LIVENESS | {"error_cb": said_by_the_server} | options,
    )
