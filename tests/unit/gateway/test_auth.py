from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from services.gateway.access import require
from services.gateway.auth import (
    RIGHTS,
    InvalidToken,
    Right,
    Role,
    RoleNotGranted,
    TokenRequestInvalid,
    VerifiedTokens,
    issue_token,
    verify_token,
)
from services.gateway.errors import ProblemError
from services.gateway.idempotency import command_id, key_scope
from services.gateway.oidc import OidcVerifier, ProviderKeys, TrustedIssuers
from shared.contracts.access import DOES

KEYS = {"k1": "a" * 40}
ISSUER = "trial-gateway"


def test_a_site_coordinator_token_carries_role_and_site() -> None:
    token = issue_token(KEYS, issuer=ISSUER, role=Role.SITE_COORDINATOR, site="NFH", hours=1, actor="sc-1")
    principal = verify_token(token, KEYS, issuer=ISSUER)
    assert (principal.actor, principal.role, principal.site) == ("sc-1", Role.SITE_COORDINATOR, "NFH")
    assert principal.may(Right.POST_SITE_FORMS)
    assert principal.may_see_site("NFH") and not principal.may_see_site("GZ2")


def test_a_monitor_sees_every_site_but_posts_no_forms() -> None:
    principal = verify_token(
        issue_token(KEYS, issuer=ISSUER, role=Role.MONITOR, site=None, hours=1), KEYS, issuer=ISSUER
    )
    assert principal.may_see_site("GZ2")
    assert not principal.may(Right.POST_SITE_FORMS)


def test_site_roles_need_a_site_and_trial_roles_take_none() -> None:
    with pytest.raises(TokenRequestInvalid):
        issue_token(KEYS, issuer=ISSUER, role=Role.INVESTIGATOR, site=None, hours=1)
    with pytest.raises(TokenRequestInvalid):
        issue_token(KEYS, issuer=ISSUER, role=Role.MONITOR, site="NFH", hours=1)


def signed(**changes: object) -> str:
    now = datetime.now(UTC)
    claims = {
        "iss": ISSUER,
        "sub": "mon-1",
        "jti": "t1",
        "role": "monitor",
        "iat": now,
        "exp": now + timedelta(hours=1),
    }
    return jwt.encode(claims | changes, KEYS["k1"], algorithm="HS256", headers={"kid": "k1"})


def test_expired_token_is_refused() -> None:
    now = datetime.now(UTC)
    with pytest.raises(InvalidToken, match="expired"):
        verify_token(signed(iat=now - timedelta(hours=2), exp=now - timedelta(hours=1)), KEYS, issuer=ISSUER)


def test_forged_signature_is_refused() -> None:
    forged = issue_token({"k1": "b" * 40}, issuer=ISSUER, role=Role.MONITOR, site=None, hours=1)
    with pytest.raises(InvalidToken):
        verify_token(forged, KEYS, issuer=ISSUER)


def test_a_token_claiming_a_site_role_without_a_site_is_refused() -> None:
    with pytest.raises(InvalidToken):
        verify_token(signed(role="investigator"), KEYS, issuer=ISSUER)


def test_tokens_of_the_previous_key_stay_valid_while_rotating() -> None:
    old = issue_token({"k0": "c" * 40}, issuer=ISSUER, role=Role.MONITOR, site=None, hours=1)
    rotating = {"k1": "a" * 40, "k0": "c" * 40}
    assert verify_token(old, rotating, issuer=ISSUER).role is Role.MONITOR
    with pytest.raises(InvalidToken, match="unknown key"):
        verify_token(old, KEYS, issuer=ISSUER)


def test_every_role_has_a_row_in_the_rights_table() -> None:
    assert set(RIGHTS) == set(Role)
    assert [r for r in Role if Right.READ_ALLOCATION_LIST in RIGHTS[r]] == [Role.STATISTICIAN]


def test_a_token_living_longer_than_the_longest_lifetime_is_refused_whoever_signed_it() -> None:
    now = datetime.now(UTC)
    with pytest.raises(InvalidToken, match="lifetime"):
        verify_token(signed(iat=now, exp=now + timedelta(days=3650)), KEYS, issuer=ISSUER)
    with pytest.raises(InvalidToken, match="lifetime"):
        verify_token(signed(iat=now, exp=now + timedelta(hours=9)), KEYS, issuer=ISSUER, max_hours=8)
    assert verify_token(signed(iat=now, exp=now + timedelta(hours=8)), KEYS, issuer=ISSUER, max_hours=8)


@pytest.mark.parametrize("claim", ["sub", "jti"])
@pytest.mark.parametrize("value", ["x" * 101, "has space", "nul\x00", "", 42])
def test_oversized_or_unprintable_subject_and_token_ids_are_refused(claim: str, value: object) -> None:
    with pytest.raises(InvalidToken, match="invalid"):
        verify_token(signed(**{claim: value}), KEYS, issuer=ISSUER)


def test_the_same_staff_code_at_two_sites_or_from_two_issuers_keeps_its_keys_apart() -> None:
    scopes = {key_scope("trial-gateway", "sc-1", "NFH"), key_scope("trial-gateway", "sc-1", "GZ2")}
    scopes.add(key_scope("https://idp.example", "sc-1", "NFH"))
    assert len({command_id(scope, "key-00001") for scope in scopes}) == 3


PROVIDER = OidcVerifier(
    ProviderKeys(httpx.AsyncClient(), "https://login.example.org"),
    issuer="https://login.example.org",
    audience="urn:trial",
    max_hours=1,
)


@pytest.mark.parametrize(
    ("groups", "role", "site"),
    [
        (["staff", "trial:NFH:investigator"], Role.INVESTIGATOR, "NFH"),
        (["trial:data_manager", "other-trial:monitor"], Role.DATA_MANAGER, None),
        (["trial:GZ2:site_coordinator", "trial:GZ2:site_coordinator"], Role.SITE_COORDINATOR, "GZ2"),
    ],
)
def test_the_provider_groups_give_one_trial_role_and_its_site(groups: list[str], role: Role, site: str | None) -> None:
    assert PROVIDER.trial_role(groups) == (role, site)


@pytest.mark.parametrize(
    "groups",
    [
        None,
        "trial:NFH:investigator",  # a string, not a list of groups
        [],
        ["trial:investigator"],  # a site role without its site
        ["trial:NFH:monitor"],  # a trial-wide role tied to a site
        ["trial:NFH:surgeon"],
        ["trial:NFH:GZ2:investigator"],
        ["trials:NFH:investigator"],
    ],
)
def test_groups_giving_no_trial_role_are_refused(groups: object) -> None:
    with pytest.raises(RoleNotGranted, match="no trial role"):
        PROVIDER.trial_role(groups)


def test_an_account_with_two_trial_roles_is_refused_rather_than_guessed() -> None:
    with pytest.raises(RoleNotGranted, match="more than one trial role"):
        PROVIDER.trial_role(["trial:NFH:investigator", "trial:GZ2:investigator"])


def test_a_token_saying_its_holder_signed_in_after_it_was_issued_is_refused() -> None:
    now = datetime.now(UTC)
    tomorrow = int((now + timedelta(days=1)).timestamp())
    with pytest.raises(InvalidToken, match="signed in after it was issued"):
        verify_token(signed(auth_time=tomorrow), KEYS, issuer=ISSUER)
    # A provider's clock a few seconds ahead is no lie; a sign-in an hour ago is a real one.
    a_little_ahead = int((now + timedelta(seconds=5)).timestamp())
    assert verify_token(signed(auth_time=a_little_ahead), KEYS, issuer=ISSUER).authenticated_at is not None
    an_hour_ago = int((now - timedelta(hours=1)).timestamp())
    principal = verify_token(signed(auth_time=an_hour_ago), KEYS, issuer=ISSUER)
    assert principal.authenticated_at == datetime.fromtimestamp(an_hour_ago, UTC)


def test_a_refusal_says_in_words_the_right_the_caller_lacks() -> None:
    coordinator = verify_token(
        issue_token(KEYS, issuer=ISSUER, role=Role.SITE_COORDINATOR, site="NFH", hours=1), KEYS, issuer=ISSUER
    )
    with pytest.raises(ProblemError) as closing:
        require(coordinator, Right.OPEN_QUERIES)
    assert closing.value.problem.detail == "a site coordinator may not open, close or re-open queries"
    with pytest.raises(ProblemError) as signing:
        require(coordinator, Right.SIGN_CASEBOOKS)
    assert signing.value.problem.detail == "a site coordinator may not sign eligibility or casebooks"
    assert set(DOES) == set(Right), "every right has its words"


def development_issuer(keys: dict[str, str]) -> TrustedIssuers:
    return TrustedIssuers(provider=None, development_keys=keys, development_issuer=ISSUER, max_hours=24)


async def test_a_token_is_verified_once_and_its_holder_taken_from_then_on_until_it_expires() -> None:
    keys = dict(KEYS)
    issuers = development_issuer(keys)
    token = issue_token(keys, issuer=ISSUER, role=Role.MONITOR, site=None, hours=1, actor="mon-1")
    first = await issuers.verify(token)
    keys["k1"] = "b" * 40  # a second verification would now fail: the holder comes from the first
    assert await issuers.verify(token) is first
    with pytest.raises(InvalidToken, match="token invalid"):
        await issuers.verify(issue_token(KEYS, issuer=ISSUER, role=Role.MONITOR, site=None, hours=1))


def test_a_held_verification_ends_when_the_token_expires_or_its_keys_are_due_to_be_checked() -> None:
    held = VerifiedTokens()
    holder = verify_token(issue_token(KEYS, issuer=ISSUER, role=Role.MONITOR, site=None, hours=1), KEYS, issuer=ISSUER)
    now = datetime.now(UTC).timestamp()
    held.keep("expiring", holder.model_copy(update={"expires_at": datetime.now(UTC)}), until=now + 3600)
    held.keep("keys due", holder, until=now)
    held.keep("standing", holder, until=now + 3600)
    assert (held.get("expiring"), held.get("keys due"), held.get("standing")) == (None, None, holder)


def test_held_verifications_are_bounded_the_least_recently_used_going_first() -> None:
    held = VerifiedTokens(capacity=2)
    holder = verify_token(issue_token(KEYS, issuer=ISSUER, role=Role.MONITOR, site=None, hours=1), KEYS, issuer=ISSUER)
    until = datetime.now(UTC).timestamp() + 3600
    held.keep("a", holder, until=until)
    held.keep("b", holder, until=until)
    assert held.get("a") is holder  # "b" is now the least recently used
    held.keep("c", holder, until=until)
    assert (held.get("a"), held.get("b"), held.get("c")) == (holder, None, holder)
