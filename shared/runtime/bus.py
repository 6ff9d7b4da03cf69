"""Connecting to NATS as one bus user: replies come to that user's own inbox prefix, never to `_INBOX`.

The server lets each user subscribe only to `_INBOX_<user>.>` (`bus_permissions`), so answers to
requests and JetStream API responses addressed to one user cannot be read with another's credential.
"""

import urllib.parse
from typing import Any

import nats
from nats.aio.client import Client

DEFAULT_INBOX = "_INBOX"


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


async def connect(nats_url: str, *, name: str, **options: Any) -> Client:
    """A connection as the URL's user, with that user's inbox prefix."""
    return await nats.connect(servers(nats_url), name=name, inbox_prefix=inbox_prefix(nats_url), **options)
