"""CDISC SDTM-shaped exports (DM with SUPPDM, IE, DS, PR, SV, AE, DV, and each log's: CM, MH) derived from the
read models, with a define-style description of every column. Dates are ISO 8601; study days count from the
surgery (RFSTDTC) as day 1, as SDTM does; one row per record as SDTM lays them out."""

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from services.reporting.reports.trial import deviations
from shared.contracts.coding import Dictionaries
from shared.contracts.dictionary import FORM_RECORDED, DataDictionary, Form, Item, ItemType
from shared.contracts.protocol import ProtocolDefinition
from shared.readmodels.amendments import protocol_versions
from shared.readmodels.states import VisitStatus
from shared.runtime.postgres import Connection

Rows = list[dict[str, Any]]

# domain → [(variable, label, type, origin or derivation)]
DEFINE: dict[str, list[tuple[str, str, str, str]]] = {
    "DM": [
        ("STUDYID", "Study Identifier", "Char", "Protocol: trial id"),
        ("DOMAIN", "Domain Abbreviation", "Char", "Assigned: DM"),
        ("USUBJID", "Unique Subject Identifier", "Char", "Derived: STUDYID-SUBJID"),
        ("SUBJID", "Subject Identifier for the Study", "Char", "Collected: subject id given at consent"),
        ("RFSTDTC", "Subject Reference Start Date/Time", "Char", "Surgery date (day 0; SDTM study day 1)"),
        ("RFENDTC", "Subject Reference End Date/Time", "Char", "Completion, withdrawal or death date"),
        ("RFXSTDTC", "Date/Time of First Study Treatment", "Char", "Surgery date (the one exposure)"),
        ("RFXENDTC", "Date/Time of Last Study Treatment", "Char", "Surgery date (the one exposure)"),
        ("RFICDTC", "Date/Time of Informed Consent", "Char", "ConsentRecorded.signed_on"),
        ("RFPENDTC", "Date/Time of End of Participation", "Char", "Last date the subject took part (any record)"),
        ("DTHDTC", "Date/Time of Death", "Char", "Derived from the grade 5 adverse event"),
        ("DTHFL", "Subject Death Flag", "Char", "Y when a grade 5 adverse event was reported"),
        ("SITEID", "Study Site Identifier", "Char", "Collected"),
        ("AGE", "Age", "Num", "Collected at screening (latest screening)"),
        ("AGEU", "Age Units", "Char", "Assigned: YEARS"),
        ("SEX", "Sex", "Char", "Collected at screening: F or M; U before any screening"),
        ("RACE", "Race", "Char", "Not collected: the protocol records age and sex only"),
        ("ETHNIC", "Ethnicity", "Char", "Not collected: the protocol records age and sex only"),
        ("ARMCD", "Planned Arm Code", "Char", "Randomization (SubjectRandomized); null when ARMNRS says why"),
        ("ARM", "Description of Planned Arm", "Char", "Protocol arm name"),
        ("ACTARMCD", "Actual Arm Code", "Char", "Surgery record: FG_HT with fat graft, HT without; null if none"),
        ("ACTARM", "Description of Actual Arm", "Char", "Derived"),
        (
            "ARMNRS",
            "Reason Arm and/or Actual Arm is Null",
            "Char",
            "SCREEN FAILURE, NOT ASSIGNED, ASSIGNED, NOT TREATED",
        ),
        ("ACTARMUD", "Description of Unplanned Actual Arm", "Char", "Empty: an operated subject had one arm's surgery"),
        ("COUNTRY", "Country", "Char", "Protocol: the site's ISO 3166-1 alpha-3 country"),
    ],
    "SUPPDM": [
        ("STUDYID", "Study Identifier", "Char", "Protocol"),
        ("RDOMAIN", "Related Domain Abbreviation", "Char", "Assigned: DM"),
        ("USUBJID", "Unique Subject Identifier", "Char", "DM.USUBJID"),
        ("IDVAR", "Identifying Variable", "Char", "Empty: one value per subject"),
        ("IDVARVAL", "Identifying Variable Value", "Char", "Empty"),
        ("QNAM", "Qualifier Variable Name", "Char", "RANDNO"),
        ("QLABEL", "Qualifier Variable Label", "Char", "Randomization Number"),
        ("QVAL", "Data Value", "Char", "SubjectRandomized.randomization_number"),
        ("QORIG", "Origin", "Char", "Assigned"),
    ],
    "IE": [
        ("STUDYID", "Study Identifier", "Char", "Protocol"),
        ("DOMAIN", "Domain Abbreviation", "Char", "Assigned: IE"),
        ("USUBJID", "Unique Subject Identifier", "Char", "Derived"),
        ("IESEQ", "Sequence Number", "Num", "Derived"),
        (
            "IETESTCD",
            "Inclusion/Exclusion Criterion Short Name",
            "Char",
            "Protocol code (IN01–IN09, EX01–EX11)",
        ),
        ("IETEST", "Inclusion/Exclusion Criterion", "Char", "The criterion's short name in the protocol (≤ 40)"),
        ("IECAT", "Inclusion/Exclusion Category", "Char", "INCLUSION or EXCLUSION"),
        ("VISITNUM", "Visit Number", "Num", "1: the screening visit"),
        ("VISIT", "Visit Name", "Char", "SCREENING"),
        (
            "IEORRES",
            "I/E Criterion Original Result",
            "Char",
            "N: inclusion not met or not confirmed; Y: exclusion met or not ruled out",
        ),
        ("IESTRESC", "I/E Criterion Result in Std Format", "Char", "As IEORRES"),
        ("IEDTC", "Date/Time of Collection", "Char", "Screening date of the latest screening"),
    ],
    "DS": [
        ("STUDYID", "Study Identifier", "Char", "Protocol"),
        ("DOMAIN", "Domain Abbreviation", "Char", "Assigned: DS"),
        ("USUBJID", "Unique Subject Identifier", "Char", "Derived"),
        ("DSSEQ", "Sequence Number", "Num", "Derived"),
        (
            "DSTERM",
            "Reported Term for the Disposition Event",
            "Char",
            "Derived from events; a consent names its form's version",
        ),
        ("DSDECOD", "Standardized Disposition Term", "Char", "CDISC NCOMPLT / milestone terms"),
        ("DSCAT", "Category for Disposition Event", "Char", "PROTOCOL MILESTONE or DISPOSITION EVENT"),
        ("DSSTDTC", "Start Date/Time of Disposition Event", "Char", "Event date"),
        ("DSSTDY", "Study Day of Start of Disposition Event", "Num", "From RFSTDTC (day 1; no day 0)"),
    ],
    "TI": [
        ("STUDYID", "Study Identifier", "Char", "Protocol"),
        ("DOMAIN", "Domain Abbreviation", "Char", "Assigned: TI"),
        ("IETESTCD", "Incl/Excl Criterion Short Name", "Char", "Protocol code (IN01–IN09, EX01–EX11)"),
        ("IETEST", "Inclusion/Exclusion Criterion", "Char", "The criterion's short name in the protocol (≤ 40)"),
        ("IECAT", "Inclusion/Exclusion Category", "Char", "INCLUSION or EXCLUSION"),
        ("TIRL", "Inclusion/Exclusion Criterion Rule", "Char", "The criterion's wording in the protocol"),
        ("TIVERS", "Protocol Criteria Versions", "Char", "The protocol version the criterion is worded in"),
    ],
    "PR": [
        ("STUDYID", "Study Identifier", "Char", "Protocol"),
        ("DOMAIN", "Domain Abbreviation", "Char", "Assigned: PR"),
        ("USUBJID", "Unique Subject Identifier", "Char", "Derived"),
        ("PRSEQ", "Sequence Number", "Num", "Derived"),
        ("PRTRT", "Reported Name of Procedure", "Char", "HAIR TRANSPLANTATION or ECM/SVF-GEL FAT GRAFT"),
        ("PRDOSE", "Dose", "Num", "Follicular units transplanted, or gel volume injected"),
        ("PRDOSU", "Dose Units", "Char", "FOLLICULAR UNITS or mL"),
        ("PRLOC", "Location of Procedure", "Char", "Donor site, or fat harvest site"),
        ("PRSTDTC", "Start Date/Time of Procedure", "Char", "GraftProcedurePerformed.procedure_date (latest record)"),
        ("PRSTDY", "Study Day of Start of Procedure", "Num", "From RFSTDTC (day 1; no day 0)"),
    ],
    "SUPPAE": [
        ("STUDYID", "Study Identifier", "Char", "Protocol"),
        ("RDOMAIN", "Related Domain Abbreviation", "Char", "Assigned: AE"),
        ("USUBJID", "Unique Subject Identifier", "Char", "AE.USUBJID"),
        ("IDVAR", "Identifying Variable", "Char", "AESEQ"),
        ("IDVARVAL", "Identifying Variable Value", "Char", "AE.AESEQ"),
        ("QNAM", "Qualifier Variable Name", "Char", "AECODST"),
        ("QLABEL", "Qualifier Variable Label", "Char", "Coding Status"),
        ("QVAL", "Data Value", "Char", "CODED, or NOT CODED when the dictionary holds no such term"),
        ("QORIG", "Origin", "Char", "Assigned"),
    ],
    "SV": [
        ("STUDYID", "Study Identifier", "Char", "Protocol"),
        ("DOMAIN", "Domain Abbreviation", "Char", "Assigned: SV"),
        ("USUBJID", "Unique Subject Identifier", "Char", "Derived"),
        ("VISITNUM", "Visit Number", "Num", "Order in the protocol schedule: screening, surgery, then follow-up"),
        ("VISIT", "Visit Name", "Char", "Protocol visit name"),
        ("SVSTDTC", "Start Date/Time of Visit", "Char", "Screening date, surgery date, or VisitCompleted.visit_date"),
        ("SVENDTC", "End Date/Time of Visit", "Char", "As SVSTDTC: every visit lasts one day"),
        ("SVSTDY", "Study Day of Start of Visit", "Num", "From RFSTDTC (day 1; no day 0)"),
        ("SVUPDES", "Description of Unplanned Visit", "Char", "Empty: every visit is a planned one"),
    ],
    "AE": [
        ("STUDYID", "Study Identifier", "Char", "Protocol"),
        ("DOMAIN", "Domain Abbreviation", "Char", "Assigned: AE"),
        ("USUBJID", "Unique Subject Identifier", "Char", "Derived"),
        ("AESEQ", "Sequence Number", "Num", "Derived"),
        ("AETERM", "Reported Term for the Adverse Event", "Char", "Collected verbatim"),
        ("AEDECOD", "Dictionary-Derived Term", "Char", "Preferred term from the sponsor's dictionary file"),
        ("AEBODSYS", "Body System or Organ Class", "Char", "System organ class from the sponsor's dictionary file"),
        ("AESTDTC", "Start Date/Time of Adverse Event", "Char", "Collected onset date"),
        (
            "AESTDY",
            "Study Day of Start of Adverse Event",
            "Num",
            "From RFSTDTC (day 1; no day 0); empty before surgery",
        ),
        ("AETOXGR", "Standard Toxicity Grade", "Char", "CTCAE grade 1–5 (latest)"),
        ("AESER", "Serious Event", "Char", "Y when an ICH E2A criterion applies or grade 5"),
        ("AESDTH", "Results in Death", "Char", "ICH E2A criterion"),
        ("AESLIFE", "Is Life Threatening", "Char", "ICH E2A criterion"),
        ("AESHOSP", "Requires or Prolongs Hospitalization", "Char", "ICH E2A criterion"),
        ("AESDISAB", "Persist or Signif Disability/Incapacity", "Char", "ICH E2A criterion"),
        ("AESCONG", "Congenital Anomaly or Birth Defect", "Char", "ICH E2A criterion"),
        ("AESMIE", "Other Medically Important Serious Event", "Char", "ICH E2A criterion"),
        ("AEREL", "Causality", "Char", "Strongest relatedness to either procedure; blank until assessed"),
        ("AEACN", "Action Taken with Study Treatment", "Char", "NOT APPLICABLE: a one-time procedure (CT ACN)"),
        ("AEACNOTH", "Other Action Taken", "Char", "Collected action (e.g. TREATMENT GIVEN, HOSPITALIZED)"),
        ("AEOUT", "Outcome of Adverse Event", "Char", "Collected (latest), CT OUT"),
    ],
    "DV": [
        ("STUDYID", "Study Identifier", "Char", "Protocol"),
        ("DOMAIN", "Domain Abbreviation", "Char", "Assigned: DV"),
        ("USUBJID", "Unique Subject Identifier", "Char", "Derived"),
        ("DVSEQ", "Sequence Number", "Num", "Derived"),
        ("DVREFID", "Reference ID", "Char", "ProtocolDeviationRecorded.deviation_id"),
        ("DVTERM", "Protocol Deviation Term", "Char", "ProtocolDeviationRecorded.description"),
        ("DVDECOD", "Protocol Deviation Coded Term", "Char", "The rule code as recorded (e.g. VISIT_OUT_OF_WINDOW_M1)"),
        ("DVCAT", "Category for Protocol Deviation", "Char", "The rule broken (the code without the visit)"),
        ("DVSTDTC", "Start Date/Time of Deviation", "Char", "The site's date the deviation happened on"),
        ("DVSTDY", "Study Day of Start of Deviation", "Num", "From RFSTDTC (day 1; no day 0); empty before surgery"),
    ],
}

WITHDRAWAL_TERMS = {
    "adverse_event": "ADVERSE EVENT",
    "subject_decision": "WITHDRAWAL BY SUBJECT",
    "lost_to_follow_up": "LOST TO FOLLOW-UP",
    "investigator_decision": "PHYSICIAN DECISION",
    "protocol_violation": "PROTOCOL DEVIATION",
    "death": "DEATH",
    "other": "OTHER",
}
SERIOUSNESS = {
    "AESDTH": "death",
    "AESLIFE": "life_threatening",
    "AESHOSP": "hospitalization_or_prolongation",
    "AESDISAB": "persistent_or_significant_disability",
    "AESCONG": "congenital_anomaly",
    "AESMIE": "other_important_medical_event",
}
RELATEDNESS_ORDER = ["not_applicable", "not_related", "unlikely", "possible", "probable", "definite"]
# CDISC controlled terminology (codelist OUT) for the collected outcome.
OUTCOME_TERMS = {
    "recovered": "RECOVERED/RESOLVED",
    "recovering": "RECOVERING/RESOLVING",
    "not_recovered": "NOT RECOVERED/NOT RESOLVED",
    "recovered_with_sequelae": "RECOVERED/RESOLVED WITH SEQUELAE",
    "fatal": "FATAL",
}
# The visits before follow-up, as the protocol's schedule names them (SCR and D0 are not follow-up visits).
SCREENING_VISIT, SURGERY_VISIT = "SCREENING", "SURGERY"


def study_day(day: date | None, reference: date | None) -> int | str:
    """SDTM study day from the reference start (the surgery): day 1 is the reference day, there is no day 0."""
    if day is None or reference is None:
        return ""
    days = (day - reference).days
    return days + 1 if days >= 0 else days


async def reference_starts(conn: Connection) -> dict[str, date]:
    """Each operated subject's RFSTDTC: the surgery date."""
    rows = await conn.fetch("SELECT subject_id, surgery_date FROM subjects WHERE surgery_date IS NOT NULL")
    return {r["subject_id"]: r["surgery_date"] for r in rows}


def _iso(value: Any) -> str:
    return value.isoformat() if value is not None else ""


def _yn(flag: bool) -> str:
    return "Y" if flag else "N"


DM_ROWS = """
SELECT s.subject_id, s.site, s.state, r.arm, r.randomization_number, l.age_years, l.sex, l.eligible,
       s.consented_on, s.surgery_date, coalesce(s.completed_on, s.withdrawn_on, s.died_on) AS ended, s.died_on,
       p.subject_id IS NOT NULL AS operated, p.ecm_svf_gel_ml IS NOT NULL AS grafted,
       greatest(s.consented_on, s.last_screened_on, r.randomized_on, s.surgery_date, s.completed_on,
                s.withdrawn_on, s.died_on, s.consent_withdrawn_on,
                (SELECT max(v.visit_date) FROM visits AS v WHERE v.subject_id = s.subject_id)) AS last_part
  FROM subjects AS s
  LEFT JOIN randomizations AS r USING (subject_id)
  LEFT JOIN procedures AS p USING (subject_id)
  LEFT JOIN (SELECT DISTINCT ON (subject_id) subject_id, age_years, sex, eligible FROM screening_log
              ORDER BY subject_id, screening_number DESC) AS l USING (subject_id)
 WHERE s.consented_on IS NOT NULL
 ORDER BY s.subject_id
"""


def _not_allocated(r: Any) -> str:
    """SDTMIG 3.4: ARMCD and ARM stay null for a subject never allocated, and ARMNRS says why."""
    return "SCREEN FAILURE" if r["eligible"] is False else "NOT ASSIGNED"


async def dm(conn: Connection, protocol: ProtocolDefinition) -> Rows:
    """Every subject who gave consent: screen failures and subjects never allocated too (SDTMIG 3.4)."""
    arms = {a.code: a.name for a in protocol.arms}
    out = []
    for r in await conn.fetch(DM_ROWS):
        actual = protocol.arm_treated_as(fat_graft=r["grafted"]) if r["operated"] else ""
        site = protocol.site(r["site"])
        reason = _not_allocated(r) if r["arm"] is None else ("" if actual else "ASSIGNED, NOT TREATED")
        out.append(
            {
                "STUDYID": protocol.trial_id,
                "DOMAIN": "DM",
                "USUBJID": f"{protocol.trial_id}-{r['subject_id']}",
                "SUBJID": r["subject_id"],
                "RFSTDTC": _iso(r["surgery_date"]),
                "RFENDTC": _iso(r["ended"]),
                "RFXSTDTC": _iso(r["surgery_date"]),
                "RFXENDTC": _iso(r["surgery_date"]),
                "RFICDTC": _iso(r["consented_on"]),
                "RFPENDTC": _iso(r["last_part"]),
                "DTHDTC": _iso(r["died_on"]),
                "DTHFL": "Y" if r["died_on"] else "",
                "SITEID": r["site"],
                "AGE": r["age_years"] if r["age_years"] is not None else "",
                "AGEU": "YEARS" if r["age_years"] is not None else "",
                "SEX": {"female": "F", "male": "M"}.get(r["sex"] or "", "U"),  # U: consented, never screened
                "RACE": "",
                "ETHNIC": "",
                "ARMCD": r["arm"] or "",
                "ARM": arms.get(r["arm"], "") if r["arm"] else "",
                "ACTARMCD": actual,
                "ACTARM": arms.get(actual, "") if actual else "",
                "ARMNRS": reason,
                "ACTARMUD": "",
                "COUNTRY": site.country if site else "",
            }
        )
    return out


async def suppdm(conn: Connection, protocol: ProtocolDefinition) -> Rows:
    rows = await conn.fetch("SELECT subject_id, randomization_number FROM randomizations ORDER BY subject_id")
    return [
        {
            "STUDYID": protocol.trial_id,
            "RDOMAIN": "DM",
            "USUBJID": f"{protocol.trial_id}-{r['subject_id']}",
            "IDVAR": "",
            "IDVARVAL": "",
            "QNAM": "RANDNO",
            "QLABEL": "Randomization Number",
            "QVAL": str(r["randomization_number"]),
            "QORIG": "Assigned",
        }
        for r in rows
    ]


async def ie(conn: Connection, protocol: ProtocolDefinition) -> Rows:
    rows = await conn.fetch(
        """SELECT c.subject_id, c.code, c.kind, c.outcome, c.rule, l.screening_date
             FROM (SELECT DISTINCT ON (subject_id) subject_id, screening_number, screening_date FROM screening_log
                    ORDER BY subject_id, screening_number DESC) AS l
             JOIN screening_criteria AS c USING (subject_id, screening_number)
            WHERE c.blocks ORDER BY c.subject_id, c.code"""
    )
    label = protocol.eligibility.labels
    out: Rows = []
    seq: dict[str, int] = {}
    for r in rows:
        seq[r["subject_id"]] = seq.get(r["subject_id"], 0) + 1
        # Only criteria that kept the subject out are listed; a missing answer keeps a subject out as an
        # unconfirmed inclusion (N) or an exclusion not ruled out (Y) would.
        result = "N" if r["kind"] == "inclusion" else "Y"
        out.append(
            {
                "STUDYID": protocol.trial_id,
                "DOMAIN": "IE",
                "USUBJID": f"{protocol.trial_id}-{r['subject_id']}",
                "IESEQ": seq[r["subject_id"]],
                "IETESTCD": r["code"],
                "IETEST": label.get(r["code"], r["rule"][:40]),
                "IECAT": r["kind"].upper(),
                "VISITNUM": 1,
                "VISIT": SCREENING_VISIT,
                "IEORRES": result,
                "IESTRESC": result,
                "IEDTC": _iso(r["screening_date"]),
            }
        )
    return out


async def ds(conn: Connection, protocol: ProtocolDefinition) -> Rows:
    rows = await conn.fetch(
        """SELECT s.subject_id, s.state, s.consented_on, s.last_screened_on, r.randomized_on,
                  s.completed_on, s.withdrawn_on, s.withdrawal_reason, s.died_on, s.consent_withdrawn_on,
                  (SELECT COALESCE(jsonb_agg(jsonb_build_array(c.version, c.signed_on) ORDER BY c.signed_on, c.version),
                                   '[]')
                     FROM consent_versions c WHERE c.subject_id = s.subject_id) AS consents
             FROM subjects AS s LEFT JOIN randomizations AS r USING (subject_id)
            WHERE s.consented_on IS NOT NULL ORDER BY s.subject_id"""
    )
    starts = await reference_starts(conn)
    out = []
    for r in rows:
        # Each consent form signed, its version in the verbatim term (a re-consent on a revised form is another).
        events = [
            (f"INFORMED CONSENT OBTAINED, FORM VERSION {version}", "PROTOCOL MILESTONE", date.fromisoformat(on))
            for version, on in r["consents"]
        ] or [("INFORMED CONSENT OBTAINED", "PROTOCOL MILESTONE", r["consented_on"])]
        if r["randomized_on"]:
            events.append(("RANDOMIZED", "PROTOCOL MILESTONE", r["randomized_on"]))
        elif r["state"] == "screen_failed":
            events.append(("SCREEN FAILURE", "DISPOSITION EVENT", r["last_screened_on"]))
        if r["consent_withdrawn_on"]:
            events.append(("WITHDRAWAL OF CONSENT", "DISPOSITION EVENT", r["consent_withdrawn_on"]))
        if r["completed_on"]:
            events.append(("COMPLETED", "DISPOSITION EVENT", r["completed_on"]))
        if r["withdrawn_on"]:
            events.append(
                (WITHDRAWAL_TERMS.get(r["withdrawal_reason"], "OTHER"), "DISPOSITION EVENT", r["withdrawn_on"])
            )
        if r["died_on"] and r["withdrawal_reason"] != "death":
            events.append(("DEATH", "DISPOSITION EVENT", r["died_on"]))
        for seq, (term, category, on) in enumerate(events, start=1):
            out.append(
                {
                    "STUDYID": protocol.trial_id,
                    "DOMAIN": "DS",
                    "USUBJID": f"{protocol.trial_id}-{r['subject_id']}",
                    "DSSEQ": seq,
                    "DSTERM": term,
                    "DSDECOD": term.partition(",")[0],
                    "DSCAT": category,
                    "DSSTDTC": _iso(on),
                    "DSSTDY": study_day(on, starts.get(r["subject_id"])),
                }
            )
    return out


async def ti(conn: Connection, protocol: ProtocolDefinition) -> Rows:
    """Every criterion of every version of the protocol, as that version words it (TIVERS)."""
    versions = await protocol_versions(conn, protocol)
    return [
        {
            "STUDYID": protocol.trial_id,
            "DOMAIN": "TI",
            "IETESTCD": code,
            "IETEST": criterion.label,
            "IECAT": "INCLUSION" if code in dict(version.eligibility.inclusion) else "EXCLUSION",
            "TIRL": criterion.text,
            "TIVERS": version.version,
        }
        for version in versions.all
        for code, criterion in version.eligibility.criteria.items()
    ]


async def pr(conn: Connection, protocol: ProtocolDefinition) -> Rows:
    out = []
    for r in await conn.fetch("SELECT * FROM procedures ORDER BY subject_id"):
        usubjid = f"{protocol.trial_id}-{r['subject_id']}"
        base = {
            "STUDYID": protocol.trial_id,
            "DOMAIN": "PR",
            "USUBJID": usubjid,
            "PRSTDTC": _iso(r["procedure_date"]),
            "PRSTDY": study_day(r["procedure_date"], r["procedure_date"]),  # the surgery is the reference start
        }
        out.append(
            base
            | {
                "PRSEQ": 1,
                "PRTRT": "HAIR TRANSPLANTATION",
                "PRDOSE": r["follicular_units"],
                "PRDOSU": "FOLLICULAR UNITS",
                "PRLOC": r["donor_site"].upper(),
            }
        )
        if r["ecm_svf_gel_ml"] is not None:
            out.append(
                base
                | {
                    "PRSEQ": 2,
                    "PRTRT": "ECM/SVF-GEL FAT GRAFT",
                    "PRDOSE": r["ecm_svf_gel_ml"],
                    "PRDOSU": "mL",
                    "PRLOC": (r["fat_harvest_site"] or "").upper(),
                }
            )
    return out


async def sv(conn: Connection, protocol: ProtocolDefinition) -> Rows:
    """Screening (latest), surgery and every follow-up visit done, numbered in the protocol's order."""
    starts = await reference_starts(conn)
    follow_up = {v.code: (i, v.name) for i, v in enumerate(protocol.schedule.follow_up, start=3)}
    visits: list[tuple[str, int, str, date]] = [
        (r["subject_id"], 1, SCREENING_VISIT, r["last_screened_on"])
        for r in await conn.fetch(
            "SELECT subject_id, last_screened_on FROM subjects WHERE last_screened_on IS NOT NULL"
        )
    ]
    visits += [(subject, 2, SURGERY_VISIT, day) for subject, day in starts.items()]
    for r in await conn.fetch(
        "SELECT subject_id, visit, visit_date FROM visits WHERE status = $1", VisitStatus.COMPLETED.value
    ):
        number, name = follow_up.get(r["visit"], (99, r["visit"]))
        visits.append((r["subject_id"], number, name.upper(), r["visit_date"]))
    return [
        {
            "STUDYID": protocol.trial_id,
            "DOMAIN": "SV",
            "USUBJID": f"{protocol.trial_id}-{subject}",
            "VISITNUM": number,
            "VISIT": name,
            "SVSTDTC": _iso(day),
            "SVENDTC": _iso(day),
            "SVSTDY": study_day(day, starts.get(subject)),
            "SVUPDES": "",
        }
        for subject, number, name, day in sorted(visits, key=lambda v: (v[0], v[1]))
    ]


async def ae(conn: Connection, protocol: ProtocolDefinition, dictionaries: Dictionaries) -> Rows:
    starts = await reference_starts(conn)
    out: Rows = []
    seq: dict[str, int] = {}
    for r in await conn.fetch("SELECT * FROM adverse_events ORDER BY subject_id, reported_at"):
        seq[r["subject_id"]] = seq.get(r["subject_id"], 0) + 1
        assessed = (r["fat_graft_relatedness"], r["hair_transplantation_relatedness"])
        # Blank until the investigator has assessed the causality.
        strongest = "" if None in assessed else max(assessed, key=RELATEDNESS_ORDER.index)
        coding = dictionaries.adverse_events.code(r["term"])
        out.append(
            {
                "STUDYID": protocol.trial_id,
                "DOMAIN": "AE",
                "USUBJID": f"{protocol.trial_id}-{r['subject_id']}",
                "AESEQ": seq[r["subject_id"]],
                "AETERM": r["term"],
                "AEDECOD": coding.preferred_term if coding else "",
                "AEBODSYS": coding.class_name if coding else "",
                "AESTDTC": _iso(r["onset_date"]),
                "AESTDY": study_day(r["onset_date"], starts.get(r["subject_id"])),
                "AETOXGR": str(r["grade"]),
                "AESER": _yn(r["serious"]),
                **{variable: _yn(criterion in r["seriousness"]) for variable, criterion in SERIOUSNESS.items()},
                "AEREL": strongest.upper(),
                "AEACN": "NOT APPLICABLE",
                "AEACNOTH": "" if r["action_taken"] == "none" else r["action_taken"].replace("_", " ").upper(),
                "AEOUT": OUTCOME_TERMS.get(r["outcome"], r["outcome"].upper()),
            }
        )
    return out


async def suppae(conn: Connection, protocol: ProtocolDefinition, dictionaries: Dictionaries) -> Rows:
    """Each adverse event's coding status: an uncoded term is listed for the data manager, never guessed."""
    return [
        {
            "STUDYID": row["STUDYID"],
            "RDOMAIN": "AE",
            "USUBJID": row["USUBJID"],
            "IDVAR": "AESEQ",
            "IDVARVAL": str(row["AESEQ"]),
            "QNAM": "AECODST",
            "QLABEL": "Coding Status",
            "QVAL": "CODED" if row["AEDECOD"] else "NOT CODED",
            "QORIG": "Assigned",
        }
        for row in await ae(conn, protocol, dictionaries)
    ]


async def dv(conn: Connection, protocol: ProtocolDefinition) -> Rows:
    found = sorted((await deviations(conn, protocol)).deviations, key=lambda d: (d.subject_id, d.occurred_on, d.code))
    starts = await reference_starts(conn)
    out: Rows = []
    seq: dict[str, int] = {}
    for d in found:
        seq[d.subject_id] = seq.get(d.subject_id, 0) + 1
        out.append(
            {
                "STUDYID": protocol.trial_id,
                "DOMAIN": "DV",
                "USUBJID": f"{protocol.trial_id}-{d.subject_id}",
                "DVSEQ": seq[d.subject_id],
                "DVREFID": str(d.deviation_id),
                "DVTERM": d.description,
                "DVDECOD": d.code,
                "DVCAT": d.kind,
                "DVSTDTC": _iso(d.occurred_on),
                "DVSTDY": study_day(d.occurred_on, starts.get(d.subject_id)),
            }
        )
    return out


def findings_define(domain: str) -> list[tuple[str, str, str, str]]:
    """A findings domain made of collected forms (QS for questionnaires): one row per item answered."""
    return [
        ("STUDYID", "Study Identifier", "Char", "Protocol"),
        ("DOMAIN", "Domain Abbreviation", "Char", f"Assigned: {domain}"),
        ("USUBJID", "Unique Subject Identifier", "Char", "Derived"),
        (f"{domain}SEQ", "Sequence Number", "Num", "Derived"),
        (f"{domain}TESTCD", "Short Name of Test", "Char", "Data dictionary: the item's name, upper case (≤ 8)"),
        (f"{domain}TEST", "Name of Test", "Char", "Data dictionary: the item's question in English"),
        (f"{domain}CAT", "Category", "Char", "Data dictionary: the form's title in English"),
        (f"{domain}ORRES", "Result or Finding in Original Units", "Char", "Collected (FormRecorded.answers)"),
        (f"{domain}STRESC", "Character Result in Standard Format", "Char", "A coded answer's English decode"),
        (f"{domain}ORRESU", "Original Units", "Char", "Data dictionary: the item's unit"),
        ("VISITNUM", "Visit Number", "Num", "Order in the protocol schedule, as SV"),
        ("VISIT", "Visit Name", "Char", "Protocol visit name"),
        (f"{domain}DTC", "Date/Time of Collection", "Char", "The form's record time, as the site's date"),
        (f"{domain}DY", "Study Day of Collection", "Num", "From RFSTDTC (day 1; no day 0)"),
    ]


def findings(domain: str, dictionary: DataDictionary) -> Callable[[Connection, ProtocolDefinition], Awaitable[Rows]]:
    """The collected forms the data dictionary (every version's, `ProtocolVersions.exported_forms`) files under
    this findings domain, each answer a row."""

    async def build(conn: Connection, protocol: ProtocolDefinition) -> Rows:
        forms = {name: f for name, f in dictionary.collected.items() if f.sdtm_domain == domain}
        starts = await reference_starts(conn)
        follow_up = {v.code: (i, v.name) for i, v in enumerate(protocol.schedule.follow_up, start=3)}
        rows: Rows = []
        records = await conn.fetch(
            """SELECT subject_id, site, recorded_at, data FROM casebook_forms
                WHERE event_type = $1 AND data->>'form' = ANY($2::text[]) ORDER BY subject_id, first_recorded_at""",
            FORM_RECORDED,
            list(forms),
        )
        sequence: dict[str, int] = {}
        for record in records:
            data, subject = record["data"], record["subject_id"]
            form = forms[data["form"]]
            number, visit = follow_up.get(data["visit"], (99, data["visit"]))
            day = protocol.local_date(record["site"], record["recorded_at"])
            for name, item in form.items.items():
                value = data["answers"].get(name)
                if value is None:
                    continue
                sequence[subject] = sequence.get(subject, 0) + 1
                decoded = dictionary.decode(item.code_list, str(value)) if item.code_list else None
                said = _yn(value) if isinstance(value, bool) else str(value)
                rows.append(
                    {
                        "STUDYID": protocol.trial_id,
                        "DOMAIN": domain,
                        "USUBJID": f"{protocol.trial_id}-{subject}",
                        f"{domain}SEQ": sequence[subject],
                        f"{domain}TESTCD": name.upper().replace("_", "")[:8],
                        f"{domain}TEST": item.label.en[:40],
                        f"{domain}CAT": form.title.en,
                        f"{domain}ORRES": said,
                        f"{domain}STRESC": decoded.en if decoded else said,
                        f"{domain}ORRESU": item.unit or "",
                        "VISITNUM": number,
                        "VISIT": visit.upper(),
                        f"{domain}DTC": _iso(day),
                        f"{domain}DY": study_day(day, starts.get(subject)),
                    }
                )
        return rows

    return build


# What a log's coding adds, by the dictionary that codes it: (suffix, label, the coding's attribute).
CODING_VARIABLES = {
    "drugs": (
        ("DECOD", "Standardized Medication Name", "preferred_term"),
        ("CLAS", "Medication Class", "class_name"),
        ("CLASCD", "Medication Class Code", "class_code"),
    ),
    "adverse-events": (
        ("DECOD", "Dictionary-Derived Term", "preferred_term"),
        ("BODSYS", "Body System or Organ Class", "class_name"),
    ),
}


def _log_items(form: Form, supplemental: bool) -> list[tuple[str, str, Item]]:
    """A log's items that go to its domain (or to its supplemental dataset): name, variable, item."""
    found = []
    for name, item in form.items.items():
        if item.sdtm is not None and item.sdtm.startswith("SUPP") == supplemental:
            found.append((name, item.sdtm.partition(".")[2], item))
    return found


def log_define(form: Form) -> list[tuple[str, str, str, str]]:
    """A log's domain (CM, MH): one row per entry, each item in the variable the data dictionary names, the
    sponsor's coding beside the verbatim term."""
    domain = form.sdtm_domain or ""
    columns = [
        ("STUDYID", "Study Identifier", "Char", "Protocol"),
        ("DOMAIN", "Domain Abbreviation", "Char", f"Assigned: {domain}"),
        ("USUBJID", "Unique Subject Identifier", "Char", "Derived"),
        (f"{domain}SEQ", "Sequence Number", "Num", "Derived"),
        (f"{domain}SPID", "Sponsor-Defined Identifier", "Char", "The entry's id (FormRecorded.entry)"),
    ]
    for name, variable, item in _log_items(form, supplemental=False):
        kind = "Num" if item.type in (ItemType.INTEGER, ItemType.DECIMAL) else "Char"
        origin = "Collected: ONGOING when still so" if variable.endswith("ENRTPT") else f"Collected: {name}"
        columns.append((variable, item.label.en[:40], kind, origin))
        if variable.endswith("ENRTPT"):
            columns.append((f"{domain}ENTPT", "End Reference Time Point", "Char", "The entry's record date"))
    for suffix, label, _ in CODING_VARIABLES.get(form.coded_by or "", ()):
        columns.append(
            (f"{domain}{suffix}", label, "Char", f"The sponsor's {form.coded_by} dictionary; empty if uncoded")
        )
    columns.append((f"{domain}STDY", "Study Day of Start", "Num", "From RFSTDTC (day 1; no day 0)"))
    return columns


def log_supp_define(form: Form) -> list[tuple[str, str, str, str]]:
    domain = form.sdtm_domain or ""
    names = ", ".join([variable for _, variable, _ in _log_items(form, supplemental=True)] + [f"{domain}CODST"])
    return [
        ("STUDYID", "Study Identifier", "Char", "Protocol"),
        ("RDOMAIN", "Related Domain Abbreviation", "Char", f"Assigned: {domain}"),
        ("USUBJID", "Unique Subject Identifier", "Char", f"{domain}.USUBJID"),
        ("IDVAR", "Identifying Variable", "Char", f"{domain}SEQ"),
        ("IDVARVAL", "Identifying Variable Value", "Char", f"{domain}.{domain}SEQ"),
        ("QNAM", "Qualifier Variable Name", "Char", names),
        ("QLABEL", "Qualifier Variable Label", "Char", "The item's question in English; Coding Status"),
        ("QVAL", "Data Value", "Char", "Collected; CODED or NOT CODED"),
        ("QORIG", "Origin", "Char", "CRF, or Assigned for the coding status"),
    ]


def _submitted(dictionary: DataDictionary, item: Item, variable: str, value: object) -> object:
    """A collected value as the domain holds it: a code as its CT submission value (else its English decode, upper
    case), an ongoing flag as ONGOING, yes or no as Y or N."""
    if value is None:
        return ""
    if item.code_list is not None:
        listed = next((c for c in dictionary.code_lists[item.code_list] if c.code == value), None)
        return (listed.submission or listed.en.upper()) if listed else str(value)
    if isinstance(value, bool):
        return ("ONGOING" if value else "") if variable.endswith("ENRTPT") else _yn(value)
    return value


async def _log_entries(conn: Connection, form: str) -> list[Any]:
    return await conn.fetch(
        """SELECT subject_id, site, recorded_at, data FROM casebook_forms
            WHERE event_type = $1 AND data->>'form' = $2 ORDER BY subject_id, first_recorded_at""",
        FORM_RECORDED,
        form,
    )


def log_domain(
    name: str, dictionary: DataDictionary, *, supplemental: bool = False
) -> Callable[[Connection, ProtocolDefinition, Dictionaries], Awaitable[Rows]]:
    """A log's domain rows (or its supplemental qualifiers, with each entry's coding status), each item as the
    data dictionary (every version's) declares it."""

    async def build(conn: Connection, protocol: ProtocolDefinition, dictionaries: Dictionaries) -> Rows:
        form = dictionary.forms[name]
        domain, terms = form.sdtm_domain or "", dictionaries.of(form.coded_by or "")
        verbatim = next(iter(form.items))
        starts = await reference_starts(conn)
        rows: Rows = []
        sequence: dict[str, int] = {}
        for record in await _log_entries(conn, name):
            data, subject = record["data"], record["subject_id"]
            answers = data["answers"]
            sequence[subject] = sequence.get(subject, 0) + 1
            usubjid = f"{protocol.trial_id}-{subject}"
            coding = terms.code(str(answers[verbatim])) if form.coded_by else None
            if supplemental:
                qualifiers = [
                    (variable, item.label.en[:40], _submitted(dictionary, item, variable, answers.get(n)), "CRF")
                    for n, variable, item in _log_items(form, supplemental=True)
                    if answers.get(n) is not None
                ]
                if form.coded_by:
                    qualifiers.append(
                        (f"{domain}CODST", "Coding Status", "CODED" if coding else "NOT CODED", "Assigned")
                    )
                rows += [
                    {
                        "STUDYID": protocol.trial_id,
                        "RDOMAIN": domain,
                        "USUBJID": usubjid,
                        "IDVAR": f"{domain}SEQ",
                        "IDVARVAL": str(sequence[subject]),
                        "QNAM": qnam,
                        "QLABEL": label,
                        "QVAL": str(value),
                        "QORIG": origin,
                    }
                    for qnam, label, value, origin in qualifiers
                ]
                continue
            row: dict[str, Any] = {
                "STUDYID": protocol.trial_id,
                "DOMAIN": domain,
                "USUBJID": usubjid,
                f"{domain}SEQ": sequence[subject],
                f"{domain}SPID": str(data["entry"]),
            }
            for n, variable, item in _log_items(form, supplemental=False):
                row[variable] = _submitted(dictionary, item, variable, answers.get(n))
                if variable.endswith("ENRTPT"):
                    row[f"{domain}ENTPT"] = _iso(protocol.local_date(record["site"], record["recorded_at"]))
            for suffix, _, attribute in CODING_VARIABLES.get(form.coded_by or "", ()):
                row[f"{domain}{suffix}"] = getattr(coding, attribute) if coding else ""
            start = answers.get("start_date")
            row[f"{domain}STDY"] = study_day(date.fromisoformat(start), starts.get(subject)) if start else ""
            rows.append(row)
        return rows

    return build


# The domains that need the sponsor's dictionaries take them as well (`datasets.builders`).
CODED_DOMAINS: dict[str, Callable[[Connection, ProtocolDefinition, Dictionaries], Awaitable[Rows]]] = {
    "AE": ae,
    "SUPPAE": suppae,
}
DOMAINS: dict[str, Callable[[Connection, ProtocolDefinition], Awaitable[Rows]]] = {
    "DM": dm,
    "SUPPDM": suppdm,
    "IE": ie,
    "DS": ds,
    "TI": ti,
    "PR": pr,
    "SV": sv,
    "DV": dv,
}
