"""Pure rules of electronic signatures (21 CFR 11.50, 11.70, 11.100, 11.200): an investigator signs a subject's
eligibility or, at the end, the casebook; the signature names who, when and what it means, covers exactly the
records current then, and needs an authentication of the last few minutes."""

import hashlib
import json
from datetime import timedelta, tzinfo
from uuid import UUID

from services.datamanagement.domain import Casebook
from shared.contracts.casebook import FormRecord
from shared.contracts.commands import ActorContext
from shared.contracts.events import DomainEvent, SignatureApplied, SubjectScreened
from shared.contracts.forms import SIGNATURE_MEANINGS, SignatureKind, Signing
from shared.contracts.rules import RecordedBefore, Refusal, RuleViolation


class ReauthenticationRequired(RuleViolation):
    rule, kind, title = "signature.reauthentication", Refusal.REAUTHENTICATE, "Authenticate again to sign"


class WrongMeaning(RuleViolation):
    rule, kind, title = "signature.meaning", Refusal.INVALID, "The signature must state its meaning"


class NothingToSign(RuleViolation):
    rule, title = "signature.signable", "Nothing of this kind to sign yet"


def sign(
    book: Casebook,
    signing: Signing,
    *,
    signer: ActorContext,
    site_zone: tzinfo,
    signature_id: UUID,
    reauthentication: timedelta,
) -> list[DomainEvent]:
    """An investigator's signature on exactly the records now current: eligibility (consent and screening, the
    screening eligible), or the whole casebook once participation is over and every query closed. The signer
    authenticated again just before (a session token alone never signs)."""
    if signing.meaning != SIGNATURE_MEANINGS[signing.kind]:
        raise WrongMeaning(f"a {signing.kind} signature states '{SIGNATURE_MEANINGS[signing.kind]}'", field="meaning")
    authenticated = signer.authenticated_at
    if authenticated is None or signer.received_at - authenticated > reauthentication:
        raise ReauthenticationRequired(
            f"sign in again: a signature needs an authentication of the last {reauthentication}",
            max_age=int(reauthentication.total_seconds()),
        )
    covered = _covered(book, signing.kind)
    covers = {form: record.version for form, record in covered.items()}
    standing = book.signatures.get(signing.kind)
    if standing is not None and standing.covers == covers:
        raise RecordedBefore(standing)  # signed already, and nothing changed since
    data = {form: record.data.model_dump(mode="json") for form, record in covered.items()}
    return [
        SignatureApplied(
            signature_id=signature_id,
            kind=signing.kind,
            meaning=signing.meaning,
            printed_name=signer.printed_name or signer.actor,
            signed_at=signer.received_at,
            signed_at_site=signer.received_at.astimezone(site_zone).isoformat(),
            authenticated_at=authenticated,
            covers=covers,
            covered_sha256=hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest(),
        )
    ]


def _covered(book: Casebook, kind: SignatureKind) -> dict[str, FormRecord]:
    if kind is SignatureKind.ELIGIBILITY:
        screening = book.records.get("screening")
        if screening is None or not isinstance(screening.data, SubjectScreened) or not screening.data.eligible:
            raise NothingToSign("eligibility is signed for a subject whose current screening is eligible")
        return {"consent": book.records["consent"], "screening": screening}
    if not book.ended:
        raise NothingToSign("the casebook is signed once participation is over (completed, withdrawn or died)")
    if any(q.is_open for q in book.queries.values()):
        raise NothingToSign("the casebook is signed once every query on it is closed")
    return dict(sorted(book.records.items()))
