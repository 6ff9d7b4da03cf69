"""Who may say what on the bus: one NATS user per service, each limited to its own facts and commands.

A leaked credential of one service cannot append another's kind of fact, raise an alert, answer
another service's commands, or delete and purge the record (no one but `admin` touches the
streams' configuration, and the streams deny deletes and purges anyway).
"""

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from shared.contracts.alerts import ALERTS_PREFIX, ALERTS_STREAM, SAFETY_TEAM_CONSUMER
from shared.contracts.photographs import BUCKET as PHOTOGRAPHS_BUCKET
from shared.readmodels.catalogue import READ_MODELS_FEED, ReadModel
from shared.runtime.bus import inbox_prefix_of
from shared.runtime.eventstore import DEAD_LETTER_PREFIX, DEAD_LETTER_STREAM, EVENTS_PREFIX, EVENTS_STREAM, TRIAL_SCOPE
from shared.runtime.projections import durable_consumer


def inbox(user: str) -> str:
    """The only reply subjects a user may read: its own (`shared.runtime.bus` connects with this prefix)."""
    return f"{inbox_prefix_of(user)}.>"


def facts(*event_types: str) -> list[str]:
    """Appending these kinds of fact about any subject."""
    return [f"{EVENTS_PREFIX}.*.*.{t}" for t in event_types]


def trial_facts(*event_types: str) -> list[str]:
    return [f"{EVENTS_PREFIX}.{TRIAL_SCOPE}.*.{t}" for t in event_types]


def reading(stream: str, *durables: str) -> list[str]:
    """Reading a stream by direct gets (histories, replays, dead letters) and through the user's own durable
    consumers only. No consumer is created any other way: the unnamed create (`CONSUMER.CREATE.<stream>`) takes the
    consumer's name from the request's body and creates or updates whatever it names, so a right to it would be a
    right to rewrite any consumer, e.g. the SAE reaction's. No user can create over, pull from, acknowledge for or
    delete another's durable consumer, nor touch the stream's configuration."""
    own = [
        api
        for durable in durables
        for api in (
            f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{durable}",
            f"$JS.API.CONSUMER.CREATE.{stream}.{durable}",
            f"$JS.API.CONSUMER.CREATE.{stream}.{durable}.>",
            f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
            f"$JS.API.CONSUMER.DELETE.{stream}.{durable}",
            f"$JS.ACK.{stream}.{durable}.>",
        )
    ]
    return [
        f"$JS.API.STREAM.INFO.{stream}",
        f"$JS.API.STREAM.MSG.GET.{stream}",  # histories: the leader's next event after what is known
        f"$JS.API.DIRECT.GET.{stream}",  # ... and the rest in batches
        *own,
    ]


# The durable consumers, by owner: the read models' and the SAE reaction's on the record. (Reporting may still
# delete each read model's own consumer, from before they were fed together.)
PROJECTION_CONSUMERS = (durable_consumer(READ_MODELS_FEED), *(durable_consumer(model) for model in ReadModel))
SAE_REACTION_CONSUMER = "reaction-sae-alerts"
ENROLLMENT_REACTION = "enrollment-closing"
ENROLLMENT_REACTION_CONSUMER = f"reaction-{ENROLLMENT_REACTION}"
EDIT_CHECKS_REACTION = "edit-checks"
EDIT_CHECKS_REACTION_CONSUMER = f"reaction-{EDIT_CHECKS_REACTION}"

# Reading histories from the legal record.
READ_EVENTS = reading(EVENTS_STREAM)
# The services that dead-letter read their own letters back to replay them (references only, no content).
READ_DEAD_LETTERS = reading(DEAD_LETTER_STREAM)
# The database lock for analysis, read directly (it closes enrolment; nothing is unlocked after it).
READ_DATABASE_LOCK = f"$JS.API.DIRECT.GET.{EVENTS_STREAM}.{EVENTS_PREFIX}.{TRIAL_SCOPE}.*.DatabaseLocked"
# The photographs' object store, which only the gateway writes and reads (a put, a get through an ordered
# consumer with flow control, which finds its stream by the chunks' subject, the purge of a replaced object's chunks).
PHOTOGRAPHS_STREAM = f"OBJ_{PHOTOGRAPHS_BUCKET}"
PHOTOGRAPHS = [
    "$JS.API.STREAM.NAMES",
    f"$O.{PHOTOGRAPHS_BUCKET}.>",
    f"$JS.API.STREAM.INFO.{PHOTOGRAPHS_STREAM}",
    f"$JS.API.STREAM.MSG.GET.{PHOTOGRAPHS_STREAM}",
    f"$JS.API.STREAM.PURGE.{PHOTOGRAPHS_STREAM}",
    f"$JS.API.CONSUMER.CREATE.{PHOTOGRAPHS_STREAM}",
    f"$JS.API.CONSUMER.CREATE.{PHOTOGRAPHS_STREAM}.>",
    f"$JS.API.CONSUMER.DELETE.{PHOTOGRAPHS_STREAM}.>",
    f"$JS.FC.{PHOTOGRAPHS_STREAM}.>",
]
STREAMS_EXIST = [f"$JS.API.STREAM.INFO.{ALERTS_STREAM}", f"$JS.API.STREAM.INFO.{EVENTS_STREAM}"]


@dataclass(frozen=True)
class Permissions:
    publish: list[str]
    # Beyond its own inbox, which every user has.
    subscribe: list[str] = field(default_factory=list)
    # Services answer commands (request/reply) on whatever reply subject the asker gave.
    responds: bool = False


def dead_letters(kind: str, name: str) -> str:
    return f"{DEAD_LETTER_PREFIX}.{kind}.{name}"


def commands(service: str) -> list[str]:
    return [f"trial.cmd.{service}.>"]


SAFETY_TEAM_ACKS = f"$JS.ACK.{ALERTS_STREAM}.{SAFETY_TEAM_CONSUMER}.>"

PERMISSIONS: dict[str, Permissions] = {
    # Streams, consumers and the migration of the record: the provisioning job and the tests' fixtures.
    "admin": Permissions(publish=[">"], subscribe=[">"]),
    # Commands, how far the record goes (a read that waits for a client's own writes checks it exists), and the
    # record itself for whose access is revoked (it already reads every read model).
    "gateway": Permissions(publish=["trial.cmd.>", *READ_EVENTS, *PHOTOGRAPHS]),
    "screening": Permissions(
        publish=[
            *facts(
                "ConsentRecorded", "ConsentDeclined", "ConsentWithdrawn", "SubjectScreened", "ProtocolDeviationRecorded"
            ),
            *READ_EVENTS,
            READ_DATABASE_LOCK,
            *STREAMS_EXIST,
        ],
        subscribe=commands("screening"),
        responds=True,
    ),
    "randomization": Permissions(
        publish=[
            *facts("SubjectRandomized", "RandomizationInvalidated"),
            *trial_facts("RandomizationListCommitted", "EnrollmentClosed"),
            *reading(EVENTS_STREAM, ENROLLMENT_REACTION_CONSUMER),
            *STREAMS_EXIST,
            dead_letters("reaction", ENROLLMENT_REACTION),
            *READ_DEAD_LETTERS,
        ],
        subscribe=commands("randomization"),
        responds=True,
    ),
    "visits": Permissions(
        publish=[
            *facts(
                "GraftProcedurePerformed",
                "VisitCompleted",
                "FormRecorded",
                "ScalpPhotographRecorded",
                "EndpointAssessed",
                "VisitMissed",
                "SubjectWithdrawn",
                "SubjectCompletedStudy",
                "ProtocolDeviationRecorded",
            ),
            *READ_EVENTS,
            *STREAMS_EXIST,
        ],
        subscribe=commands("visits"),
        responds=True,
    ),
    "safety": Permissions(
        publish=[
            *facts(
                "AdverseEventReported",
                "AdverseEventUpdated",
                "SeriousAdverseEventAlertRaised",
                "SeriousAdverseEventAcknowledged",
                "SeriousAdverseEventAlertEscalated",
                "ProtocolDeviationRecorded",
            ),
            f"{ALERTS_PREFIX}.>",
            f"$JS.API.CONSUMER.INFO.{ALERTS_STREAM}.{SAFETY_TEAM_CONSUMER}",  # checked for drift, never changed
            dead_letters("reaction", ">"),
            *READ_DEAD_LETTERS,
            *reading(EVENTS_STREAM, SAE_REACTION_CONSUMER),
            *STREAMS_EXIST,
        ],
        subscribe=commands("safety"),
        responds=True,
    ),
    "datamanagement": Permissions(
        publish=[
            *facts(
                "QueryOpened",
                "QueryAnswered",
                "QueryClosed",
                "QueryReopened",
                "FormVerified",
                "CasebookLocked",
                "CasebookUnlocked",
                "SignatureApplied",
                "ProtocolDeviationRecorded",  # what an edit check finds the protocol forbids
            ),
            *trial_facts(
                "DatabaseLocked",
                "UserAccessRevoked",
                "UserAccessRestored",
                "ProtocolAmendmentDeployed",
                "ProtocolAmendmentEffective",
            ),
            *reading(EVENTS_STREAM, EDIT_CHECKS_REACTION_CONSUMER),
            READ_DATABASE_LOCK,
            *STREAMS_EXIST,
            dead_letters("reaction", EDIT_CHECKS_REACTION),
            *READ_DEAD_LETTERS,
        ],
        subscribe=commands("datamanagement"),
        responds=True,
    ),
    "reporting": Permissions(
        publish=[
            *reading(EVENTS_STREAM, *PROJECTION_CONSUMERS),
            *STREAMS_EXIST,
            dead_letters("projection", ">"),
            *READ_DEAD_LETTERS,
        ]
    ),
    # The safety team's terminal: its durable consumer of the alerts, and nothing else.
    "safety-team": Permissions(
        publish=[
            f"$JS.API.CONSUMER.INFO.{ALERTS_STREAM}.{SAFETY_TEAM_CONSUMER}",
            f"$JS.API.CONSUMER.MSG.NEXT.{ALERTS_STREAM}.{SAFETY_TEAM_CONSUMER}",
            SAFETY_TEAM_ACKS,
        ]
    ),
}


def nats_authorization(passwords: dict[str, str]) -> str:
    """The nats-server `authorization` block for these users (configuration syntax, JSON-compatible)."""
    users = []
    for user, permissions in PERMISSIONS.items():
        entry: dict[str, object] = {
            "user": user,
            "password": passwords[user],
            "permissions": {
                "publish": {"allow": permissions.publish},
                "subscribe": {"allow": [inbox(user), *permissions.subscribe]},
                **({"allow_responses": True} if permissions.responds else {}),
            },
        }
        users.append(entry)
    return "authorization: " + json.dumps({"users": users}, indent=2) + "\n"


def main() -> int:
    """`python -m ops.bus_permissions PASSWORDS.json`: print the authorization block for nats-server.

    PASSWORDS.json maps each user to its password; ops keep it in their secret store and mount the
    output as the NATS servers' `auth.conf`.
    """
    parser = argparse.ArgumentParser(prog="python -m ops.bus_permissions", description=main.__doc__)
    parser.add_argument("passwords", type=Path)
    args = parser.parse_args()
    passwords = json.loads(args.passwords.read_text())
    missing = sorted(set(PERMISSIONS) - set(passwords))
    if missing:
        print(f"no password for {missing}", file=sys.stderr)
        return 2
    print(nats_authorization(passwords), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
