"""Who may do what in the trial: the roles, their rights, and which right each command needs.

The gateway checks these before it reads a request; each service checks them again on the identity the
gateway vouched for (`shared.contracts.attestation`), so no bus credential alone can act as any role.
"""

from enum import StrEnum


class Role(StrEnum):
    SITE_COORDINATOR = "site_coordinator"
    INVESTIGATOR = "investigator"
    MONITOR = "monitor"
    DATA_MANAGER = "data_manager"
    SAFETY_OFFICER = "safety_officer"
    STATISTICIAN = "statistician"
    # Counts follicles and density from the photographs, blind to the arm (the PROBE design's assessor).
    OUTCOME_ASSESSOR = "outcome_assessor"


class Right(StrEnum):
    POST_SITE_FORMS = "post_site_forms"
    READ_SUBJECTS = "read_subjects"
    READ_REPORTS = "read_reports"
    EXPORT_DATA = "export_data"
    ACKNOWLEDGE_ALERTS = "acknowledge_alerts"
    READ_ADVERSE_EVENTS = "read_adverse_events"
    READ_ALLOCATION_LIST = "read_allocation_list"
    INVALIDATE_RANDOMIZATION = "invalidate_randomization"
    OPEN_QUERIES = "open_queries"  # and close or re-open the queries one opened
    ANSWER_QUERIES = "answer_queries"
    VERIFY_FORMS = "verify_forms"
    LOCK_CASEBOOKS = "lock_casebooks"
    SIGN_CASEBOOKS = "sign_casebooks"
    MANAGE_ACCESS = "manage_access"
    # The investigator's own judgement, never a coordinator's data entry (the protocol's delegation).
    JUDGE_ELIGIBILITY = "judge_eligibility"  # EX11: judged unsuitable by the investigator
    ASSESS_CAUSALITY = "assess_causality"  # an adverse event's relationship to each procedure
    READ_PHOTOGRAPHS = "read_photographs"
    ASSESS_ENDPOINTS = "assess_endpoints"  # from the photographs alone, blind to the arm
    DEPLOY_AMENDMENTS = "deploy_amendments"  # a new version of the protocol, in force at each site from its day


# What each right lets a person do, as a refusal names it ("may not ...").
DOES: dict[Right, str] = {
    Right.POST_SITE_FORMS: "enter or correct a site's forms",
    Right.READ_SUBJECTS: "read subjects",
    Right.READ_REPORTS: "read the reports",
    Right.EXPORT_DATA: "export the data",
    Right.ACKNOWLEDGE_ALERTS: "acknowledge SAE alerts",
    Right.READ_ADVERSE_EVENTS: "read adverse events and SAE alerts",
    Right.READ_ALLOCATION_LIST: "read the allocation list",
    Right.INVALIDATE_RANDOMIZATION: "invalidate a randomization",
    Right.OPEN_QUERIES: "open, close or re-open queries",
    Right.ANSWER_QUERIES: "answer queries",
    Right.VERIFY_FORMS: "verify forms against source",
    Right.LOCK_CASEBOOKS: "lock or unlock casebooks, or lock the database",
    Right.SIGN_CASEBOOKS: "sign eligibility or casebooks",
    Right.MANAGE_ACCESS: "revoke or restore users' access",
    Right.JUDGE_ELIGIBILITY: "give the investigator's judgement on eligibility (EX11)",
    Right.ASSESS_CAUSALITY: "assess an adverse event's causality",
    Right.READ_PHOTOGRAPHS: "see the scalp photographs",
    Right.ASSESS_ENDPOINTS: "assess the endpoints from the photographs, blind to the arm",
    Right.DEPLOY_AMENDMENTS: "deploy a protocol amendment",
}


# The whole access policy, in one table. Site roles are further limited to their own site.
RIGHTS: dict[Role, frozenset[Right]] = {
    Role.SITE_COORDINATOR: frozenset(
        {Right.POST_SITE_FORMS, Right.READ_SUBJECTS, Right.READ_PHOTOGRAPHS, Right.ANSWER_QUERIES}
    ),
    Role.INVESTIGATOR: frozenset(
        {
            Right.POST_SITE_FORMS,
            Right.READ_SUBJECTS,
            Right.READ_PHOTOGRAPHS,
            Right.ANSWER_QUERIES,
            Right.SIGN_CASEBOOKS,
            Right.JUDGE_ELIGIBILITY,
            Right.ASSESS_CAUSALITY,
        }
    ),
    Role.MONITOR: frozenset(
        {Right.READ_SUBJECTS, Right.READ_PHOTOGRAPHS, Right.READ_REPORTS, Right.OPEN_QUERIES, Right.VERIFY_FORMS}
    ),
    Role.DATA_MANAGER: frozenset(
        {
            Right.READ_SUBJECTS,
            Right.READ_PHOTOGRAPHS,
            Right.READ_REPORTS,
            Right.EXPORT_DATA,
            Right.INVALIDATE_RANDOMIZATION,
            Right.OPEN_QUERIES,
            Right.LOCK_CASEBOOKS,
            Right.MANAGE_ACCESS,
            Right.DEPLOY_AMENDMENTS,
        }
    ),
    Role.SAFETY_OFFICER: frozenset({Right.ACKNOWLEDGE_ALERTS, Right.READ_ADVERSE_EVENTS}),
    Role.STATISTICIAN: frozenset({Right.READ_REPORTS, Right.EXPORT_DATA, Right.READ_ALLOCATION_LIST}),
    # Nothing that names or implies the arm: no subject, form, report or export; the photographs and the counts.
    Role.OUTCOME_ASSESSOR: frozenset({Right.READ_PHOTOGRAPHS, Right.ASSESS_ENDPOINTS}),
}
SITE_ROLES = frozenset({Role.SITE_COORDINATOR, Role.INVESTIGATOR})


def may(role: str, right: Right) -> bool:
    """The role, as a token or a command names it, has the right (a role the table does not know has none)."""
    return any(known == role and right in rights for known, rights in RIGHTS.items())


def trial_roles(groups: object, prefix: str = "trial") -> set[tuple[Role, str | None]]:
    """The trial roles an identity provider's groups give: `trial:NFH:investigator` (a site role at its site),
    `trial:monitor` (a trial-wide role); any other group is not the trial's and is ignored."""
    granted: set[tuple[Role, str | None]] = set()
    for group in groups if isinstance(groups, list) else ():
        head, *rest = str(group).split(":")
        if head != prefix or not rest:
            continue
        *site, role = rest
        if role not in Role.__members__.values() or len(site) > 1:
            continue
        if (Role(role) in SITE_ROLES) == bool(site):
            granted.add((Role(role), site[0] if site else None))
    return granted
