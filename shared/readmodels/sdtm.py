"""CDISC SDTM-shaped exports (DM, IE, DS, PR, SV, AE, DV) derived from the read models, with a define-style
description of every column. Dates are ISO 8601; one row per record as SDTM lays them out."""

from collections.abc import Awaitable, Callable
from typing import Any

from shared.contracts.protocol import ProtocolDefinition
from shared.readmodels.subjects import VisitStatus
from shared.readmodels.trial import deviations
from shared.runtime.postgres import Connection

Rows = list[dict[str, Any]]

# domain → [(variable, label, type, origin or derivation)]
DEFINE: dict[str, list[tuple[str, str, str, str]]] = {
    "DM": [
        ("STUDYID", "Study Identifier", "Char", "Protocol: trial id"),
        ("DOMAIN", "Domain Abbreviation", "Char", "Assigned: DM"),
        ("USUBJID", "Unique Subject Identifier", "Char", "Derived: STUDYID-SUBJID"),
        ("SUBJID", "Subject Identifier for the Study", "Char", "Collected: subject id given at consent"),
        ("SITEID", "Study Site Identifier", "Char", "Collected"),
        ("AGE", "Age", "Num", "Collected at screening (latest screening)"),
        ("AGEU", "Age Units", "Char", "Assigned: YEARS"),
        ("SEX", "Sex", "Char", "Collected at screening: F or M"),
        ("ARMCD", "Planned Arm Code", "Char", "Randomization (SubjectRandomized)"),
        ("ARM", "Description of Planned Arm", "Char", "Protocol arm name"),
        (
            "ACTARMCD",
            "Actual Arm Code",
            "Char",
            "Surgery record: FG_HT with fat graft, HT without, NOTTRT",
        ),
        ("ACTARM", "Description of Actual Arm", "Char", "Derived"),
        ("RFICDTC", "Date/Time of Informed Consent", "Char", "ConsentRecorded.signed_on"),
        ("RFSTDTC", "Subject Reference Start Date/Time", "Char", "Surgery date (day 0)"),
        ("RFENDTC", "Subject Reference End Date/Time", "Char", "Completion or withdrawal date"),
        ("DTHFL", "Subject Death Flag", "Char", "Y when a grade 5 adverse event was reported"),
        ("DTHDTC", "Date/Time of Death", "Char", "Derived from the grade 5 adverse event"),
        ("RANDNO", "Randomization Number", "Num", "SubjectRandomized.randomization_number (supplemental)"),
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
        ("IETEST", "Inclusion/Exclusion Criterion", "Char", "Protocol criterion text (first 200 characters)"),
        ("IECAT", "Inclusion/Exclusion Category", "Char", "INCLUSION or EXCLUSION"),
        ("IEORRES", "I/E Criterion Original Result", "Char", "N: inclusion not met; Y: exclusion met; blank: missing"),
        ("IESTRESC", "I/E Criterion Result in Std Format", "Char", "As IEORRES"),
        ("IEDTC", "Date/Time of Collection", "Char", "Screening date of the latest screening"),
    ],
    "DS": [
        ("STUDYID", "Study Identifier", "Char", "Protocol"),
        ("DOMAIN", "Domain Abbreviation", "Char", "Assigned: DS"),
        ("USUBJID", "Unique Subject Identifier", "Char", "Derived"),
        ("DSSEQ", "Sequence Number", "Num", "Derived"),
        ("DSTERM", "Reported Term for the Disposition Event", "Char", "Derived from events"),
        ("DSDECOD", "Standardized Disposition Term", "Char", "CDISC NCOMPLT / milestone terms"),
        ("DSCAT", "Category for Disposition Event", "Char", "PROTOCOL MILESTONE or DISPOSITION EVENT"),
        ("DSSTDTC", "Start Date/Time of Disposition Event", "Char", "Event date"),
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
    ],
    "SV": [
        ("STUDYID", "Study Identifier", "Char", "Protocol"),
        ("DOMAIN", "Domain Abbreviation", "Char", "Assigned: SV"),
        ("USUBJID", "Unique Subject Identifier", "Char", "Derived"),
        ("VISITNUM", "Visit Number", "Num", "Order in the protocol schedule"),
        ("VISIT", "Visit Name", "Char", "Protocol visit code"),
        ("SVSTDTC", "Start Date/Time of Visit", "Char", "VisitCompleted.visit_date"),
        (
            "SVUPDES",
            "Description of Unplanned Visit",
            "Char",
            "OUT OF WINDOW when outside the protocol window",
        ),
    ],
    "AE": [
        ("STUDYID", "Study Identifier", "Char", "Protocol"),
        ("DOMAIN", "Domain Abbreviation", "Char", "Assigned: AE"),
        ("USUBJID", "Unique Subject Identifier", "Char", "Derived"),
        ("AESEQ", "Sequence Number", "Num", "Derived"),
        ("AETERM", "Reported Term for the Adverse Event", "Char", "Collected"),
        ("AESTDTC", "Start Date/Time of Adverse Event", "Char", "Collected onset date"),
        ("AETOXGR", "Standard Toxicity Grade", "Char", "CTCAE grade 1–5 (latest)"),
        ("AESER", "Serious Event", "Char", "Y when an ICH E2A criterion applies or grade 5"),
        ("AESDTH", "Results in Death", "Char", "ICH E2A criterion"),
        ("AESLIFE", "Is Life Threatening", "Char", "ICH E2A criterion"),
        ("AESHOSP", "Requires or Prolongs Hospitalization", "Char", "ICH E2A criterion"),
        ("AESDISAB", "Persist or Signif Disability/Incapacity", "Char", "ICH E2A criterion"),
        ("AESCONG", "Congenital Anomaly or Birth Defect", "Char", "ICH E2A criterion"),
        ("AESMIE", "Other Medically Important Serious Event", "Char", "ICH E2A criterion"),
        ("AEREL", "Causality", "Char", "Strongest relatedness to either procedure"),
        ("AEACN", "Action Taken", "Char", "Collected"),
        ("AEOUT", "Outcome of Adverse Event", "Char", "Collected (latest)"),
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
        ("DVSTDTC", "Start Date/Time of Deviation", "Char", "The site's date when the deviation was recorded"),
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


def _iso(value: Any) -> str:
    return value.isoformat() if value is not None else ""


def _yn(flag: bool) -> str:
    return "Y" if flag else "N"


async def dm(conn: Connection, protocol: ProtocolDefinition) -> Rows:
    arms = {a.code: a.name for a in protocol.arms}
    rows = await conn.fetch(
        """SELECT r.subject_id, r.site, r.arm, r.randomization_number, l.age_years, l.sex, s.consented_on,
                  s.surgery_date, coalesce(s.completed_on, s.withdrawn_on) AS ended, s.died_on,
                  p.subject_id IS NOT NULL AS operated, p.ecm_svf_gel_ml IS NOT NULL AS grafted
             FROM randomizations AS r
             JOIN subjects AS s USING (subject_id)
             LEFT JOIN procedures AS p USING (subject_id)
             LEFT JOIN (SELECT DISTINCT ON (subject_id) subject_id, age_years, sex FROM screening_log
                         ORDER BY subject_id, screening_number DESC) AS l USING (subject_id)
            ORDER BY r.randomization_number"""
    )
    out = []
    for r in rows:
        actual = protocol.arm_treated_as(fat_graft=r["grafted"]) if r["operated"] else "NOTTRT"
        out.append(
            {
                "STUDYID": protocol.trial_id,
                "DOMAIN": "DM",
                "USUBJID": f"{protocol.trial_id}-{r['subject_id']}",
                "SUBJID": r["subject_id"],
                "SITEID": r["site"],
                "AGE": r["age_years"] if r["age_years"] is not None else "",
                "AGEU": "YEARS",
                "SEX": {"female": "F", "male": "M"}.get(r["sex"] or "", ""),
                "ARMCD": r["arm"],
                "ARM": arms.get(r["arm"], r["arm"]),
                "ACTARMCD": actual,
                "ACTARM": arms.get(actual, "Not Treated"),
                "RFICDTC": _iso(r["consented_on"]),
                "RFSTDTC": _iso(r["surgery_date"]),
                "RFENDTC": _iso(r["ended"]),
                "DTHFL": "Y" if r["died_on"] else "",
                "DTHDTC": _iso(r["died_on"]),
                "RANDNO": r["randomization_number"],
            }
        )
    return out


async def ie(conn: Connection, protocol: ProtocolDefinition) -> Rows:
    rows = await conn.fetch(
        """SELECT c.subject_id, c.code, c.kind, c.outcome, c.rule, l.screening_date
             FROM (SELECT DISTINCT ON (subject_id) subject_id, screening_number, screening_date FROM screening_log
                    ORDER BY subject_id, screening_number DESC) AS l
             JOIN screening_criteria AS c USING (subject_id, screening_number)
            WHERE c.blocks ORDER BY c.subject_id, c.code"""
    )
    out: Rows = []
    seq: dict[str, int] = {}
    for r in rows:
        seq[r["subject_id"]] = seq.get(r["subject_id"], 0) + 1
        result = "" if r["outcome"] == "missing" else ("N" if r["kind"] == "inclusion" else "Y")
        out.append(
            {
                "STUDYID": protocol.trial_id,
                "DOMAIN": "IE",
                "USUBJID": f"{protocol.trial_id}-{r['subject_id']}",
                "IESEQ": seq[r["subject_id"]],
                "IETESTCD": r["code"],
                "IETEST": r["rule"][:200],
                "IECAT": r["kind"].upper(),
                "IEORRES": result,
                "IESTRESC": result,
                "IEDTC": _iso(r["screening_date"]),
            }
        )
    return out


async def ds(conn: Connection, protocol: ProtocolDefinition) -> Rows:
    rows = await conn.fetch(
        """SELECT s.subject_id, s.state, s.consented_on, s.last_screened_on, r.randomized_on,
                  s.completed_on, s.withdrawn_on, s.withdrawal_reason, s.died_on, s.consent_withdrawn_on
             FROM subjects AS s LEFT JOIN randomizations AS r USING (subject_id)
            WHERE s.consented_on IS NOT NULL ORDER BY s.subject_id"""
    )
    out = []
    for r in rows:
        events = [("INFORMED CONSENT OBTAINED", "PROTOCOL MILESTONE", r["consented_on"])]
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
                    "DSDECOD": term,
                    "DSCAT": category,
                    "DSSTDTC": _iso(on),
                }
            )
    return out


async def pr(conn: Connection, protocol: ProtocolDefinition) -> Rows:
    out = []
    for r in await conn.fetch("SELECT * FROM procedures ORDER BY subject_id"):
        usubjid = f"{protocol.trial_id}-{r['subject_id']}"
        base = {"STUDYID": protocol.trial_id, "DOMAIN": "PR", "USUBJID": usubjid, "PRSTDTC": _iso(r["procedure_date"])}
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
    order = {v.code: i for i, v in enumerate(protocol.schedule.follow_up, start=1)}
    rows = await conn.fetch(
        "SELECT subject_id, visit, visit_date, in_window FROM visits WHERE status = $1 ORDER BY subject_id",
        VisitStatus.COMPLETED.value,
    )
    return sorted(
        (
            {
                "STUDYID": protocol.trial_id,
                "DOMAIN": "SV",
                "USUBJID": f"{protocol.trial_id}-{r['subject_id']}",
                "VISITNUM": order.get(r["visit"], 99),
                "VISIT": r["visit"],
                "SVSTDTC": _iso(r["visit_date"]),
                "SVUPDES": "" if r["in_window"] else "OUT OF WINDOW",
            }
            for r in rows
        ),
        key=lambda row: (row["USUBJID"], row["VISITNUM"]),
    )


async def ae(conn: Connection, protocol: ProtocolDefinition) -> Rows:
    out: Rows = []
    seq: dict[str, int] = {}
    for r in await conn.fetch("SELECT * FROM adverse_events ORDER BY subject_id, reported_at"):
        seq[r["subject_id"]] = seq.get(r["subject_id"], 0) + 1
        strongest = max(
            (r["fat_graft_relatedness"], r["hair_transplantation_relatedness"]), key=RELATEDNESS_ORDER.index
        )
        out.append(
            {
                "STUDYID": protocol.trial_id,
                "DOMAIN": "AE",
                "USUBJID": f"{protocol.trial_id}-{r['subject_id']}",
                "AESEQ": seq[r["subject_id"]],
                "AETERM": r["term"],
                "AESTDTC": _iso(r["onset_date"]),
                "AETOXGR": str(r["grade"]),
                "AESER": _yn(r["serious"]),
                **{variable: _yn(criterion in r["seriousness"]) for variable, criterion in SERIOUSNESS.items()},
                "AEREL": strongest.upper(),
                "AEACN": r["action_taken"].upper(),
                "AEOUT": r["outcome"].upper(),
            }
        )
    return out


async def dv(conn: Connection, protocol: ProtocolDefinition) -> Rows:
    found = sorted((await deviations(conn, protocol)).deviations, key=lambda d: (d.subject_id, d.recorded_on, d.code))
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
                "DVSTDTC": _iso(d.recorded_on),
            }
        )
    return out


DOMAINS: dict[str, Callable[[Connection, ProtocolDefinition], Awaitable[Rows]]] = {
    "DM": dm,
    "IE": ie,
    "DS": ds,
    "PR": pr,
    "SV": sv,
    "AE": ae,
    "DV": dv,
}
