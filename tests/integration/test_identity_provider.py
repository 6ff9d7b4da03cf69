"""The gateway's token verification against a real OpenID Connect provider (node-oidc-provider) signing people in
with authorization code and PKCE: issuer, audience, the provider's keys as they rotate, roles from groups."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from devstack.identity import GATEWAY_AUDIENCE, Account, IdentityProvider, development_accounts, sign_in
from services.gateway.auth import InvalidToken, ProviderUnavailable, RoleNotGranted, issue_token
from services.gateway.oidc import OidcVerifier, ProviderKeys, TrustedIssuers
from shared.contracts.access import Role
from shared.contracts.protocol import ProtocolDefinition

OTHER_API = "urn:nct06646146:another-api"
NO_ROLE = Account("visitor", "A Visitor", ("staff",))
DEVELOPMENT_KEYS = {"dev": "Ee4MVjrfHa882d11HIRyq3gFIOp1kS5av0vku167-bU"}


def provider_in(folder: Path, protocol: ProtocolDefinition) -> IdentityProvider:
    return IdentityProvider(folder, (*development_accounts(protocol), NO_ROLE), resources=(GATEWAY_AUDIENCE, OTHER_API))


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory, protocol: ProtocolDefinition) -> Iterator[IdentityProvider]:
    running = provider_in(tmp_path_factory.mktemp("idp"), protocol)
    running.start()
    yield running
    running.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def issuers(provider: IdentityProvider, http: httpx.AsyncClient, *, cache_seconds: float = 300) -> TrustedIssuers:
    """As the gateway builds them: the provider, and the development issuer beside it."""
    keys = ProviderKeys(http, provider.issuer, cache_seconds=cache_seconds, refetch_seconds=0)
    verifier = OidcVerifier(keys, issuer=provider.issuer, audience=GATEWAY_AUDIENCE, max_hours=24)
    return TrustedIssuers(
        provider=verifier, development_keys=DEVELOPMENT_KEYS, development_issuer="trial-gateway", max_hours=24
    )


async def test_an_investigator_signed_in_at_the_provider_is_known_by_role_site_name_and_sign_in_time(
    provider: IdentityProvider, http: httpx.AsyncClient
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    signed_in = await sign_in(provider.issuer, "investigator.gz2")
    caller = await issuers(provider, http).verify(signed_in.access_token)
    assert (caller.actor, caller.role, caller.site) == ("investigator.gz2", Role.INVESTIGATOR, "GZ2")
    assert caller.name == "Investigator GZ2" and caller.issuer == provider.issuer
    assert caller.authenticated_at is not None and before <= caller.authenticated_at <= datetime.now(UTC)


async def test_the_development_issuer_still_works_beside_the_provider(
    provider: IdentityProvider, http: httpx.AsyncClient
) -> None:
    token = issue_token(DEVELOPMENT_KEYS, issuer="trial-gateway", role=Role.MONITOR, site=None, hours=1, actor="m-1")
    assert (await issuers(provider, http).verify(token)).role is Role.MONITOR


async def test_a_token_from_another_issuer_is_refused(
    provider: IdentityProvider,
    http: httpx.AsyncClient,
    tmp_path: Path,
    protocol: ProtocolDefinition,
) -> None:
    other = provider_in(tmp_path, protocol)
    other.start()
    try:
        foreign = await sign_in(other.issuer, "investigator.nfh")
    finally:
        other.stop()
    with pytest.raises(InvalidToken, match="another issuer"):
        await issuers(provider, http).verify(foreign.access_token)


async def test_a_token_the_provider_issued_for_another_audience_is_refused(
    provider: IdentityProvider, http: httpx.AsyncClient
) -> None:
    elsewhere = await sign_in(provider.issuer, "investigator.nfh", resource=OTHER_API)
    with pytest.raises(InvalidToken, match="another audience"):
        await issuers(provider, http).verify(elsewhere.access_token)


async def test_an_account_the_provider_gives_no_trial_role_is_known_but_refused(
    provider: IdentityProvider, http: httpx.AsyncClient
) -> None:
    signed_in = await sign_in(provider.issuer, NO_ROLE.login)
    with pytest.raises(RoleNotGranted, match="no trial role"):
        await issuers(provider, http).verify(signed_in.access_token)


async def test_a_tampered_token_is_refused(provider: IdentityProvider, http: httpx.AsyncClient) -> None:
    token = (await sign_in(provider.issuer, "monitor")).access_token
    head, payload, signature = token.split(".")
    with pytest.raises(InvalidToken):
        await issuers(provider, http).verify(f"{head}.{payload}.{signature[::-1]}")


async def test_a_rotated_key_is_fetched_when_first_seen_and_a_dropped_key_is_refused_once_the_cache_expires(
    tmp_path: Path, http: httpx.AsyncClient, protocol: ProtocolDefinition
) -> None:
    rotating = provider_in(tmp_path, protocol)
    rotating.start()
    try:
        gateway = issuers(rotating, http, cache_seconds=1.0)
        before = (await sign_in(rotating.issuer, "monitor")).access_token
        assert (await gateway.verify(before)).role is Role.MONITOR

        rotating.rotate_keys(keep_previous=True)
        after = (await sign_in(rotating.issuer, "monitor")).access_token
        assert (await gateway.verify(after)).role is Role.MONITOR  # a key id not seen yet: fetched at once
        assert (await gateway.verify(before)).role is Role.MONITOR  # the previous key is still published

        rotating.rotate_keys(keep_previous=False)
        latest = (await sign_in(rotating.issuer, "monitor")).access_token
        assert (await gateway.verify(latest)).role is Role.MONITOR
        await asyncio.sleep(1.1)  # the cache's age passes: the keys are fetched again on the next token
        with pytest.raises(InvalidToken, match="does not publish"):
            await gateway.verify(after)
    finally:
        rotating.stop()


async def test_a_second_sign_in_keeps_the_first_authentication_time_unless_a_fresh_one_is_asked(
    provider: IdentityProvider, http: httpx.AsyncClient
) -> None:
    gateway = issuers(provider, http)
    async with httpx.AsyncClient(timeout=10) as browser:  # keeps the provider's session cookie
        first = await gateway.verify((await sign_in(provider.issuer, "investigator.nfh", http=browser)).access_token)
        await asyncio.sleep(1.1)  # auth_time counts whole seconds
        silent = await gateway.verify((await sign_in(provider.issuer, "investigator.nfh", http=browser)).access_token)
        fresh = await gateway.verify(
            (await sign_in(provider.issuer, "investigator.nfh", http=browser, max_age=0)).access_token
        )
    assert first.authenticated_at is not None and fresh.authenticated_at is not None
    assert silent.authenticated_at == first.authenticated_at
    assert fresh.authenticated_at - first.authenticated_at >= timedelta(seconds=1)


async def test_a_provider_out_of_reach_is_a_retry_later_not_a_refusal_and_its_return_needs_nothing(
    tmp_path: Path, http: httpx.AsyncClient, protocol: ProtocolDefinition
) -> None:
    provider = provider_in(tmp_path, protocol)
    provider.start()
    try:
        token = (await sign_in(provider.issuer, "safety-officer")).access_token
        provider.stop()
        gateway = issuers(provider, http)
        with pytest.raises(ProviderUnavailable):
            await gateway.verify(token)
        provider.start()
        assert (await gateway.verify(token)).role is Role.SAFETY_OFFICER
    finally:
        provider.stop()
