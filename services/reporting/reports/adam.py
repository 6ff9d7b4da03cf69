"""CDISC ADaM-shaped analysis datasets: ADSL (one row per randomized subject, with the analysis-set flags) and
ADEFF (a BDS dataset of every assessment at every visit), with a define-style description of every column.

ADSL is built on the SDTM DM rows, so its subjects are DM's; every ADEFF value names the visit event it
comes from (SRCEVID).
"""

from typing import Any

from services.reporting.reports.endpoints import ASSESSMENTS, BLIND_PARAMETERS, endpoint_records
from services.reporting.reports.sdtm import Rows, dm
from shared.contracts.protocol import ProtocolDefinition
from shared.readmodels.states import VisitStatus
from shared.runtime.postgres import Connection

DEFINE: dict[str, list[tuple[str, str, str, str]]] = {
    "ADSL": [
        ("STUDYID", "Study Identifier", "Char", "DM.STUDYID"),
        ("USUBJID", "Unique Subject Identifier", "Char", "DM.USUBJID"),
        ("SUBJID", "Subject Identifier for the Study", "Char", "DM.SUBJID"),
        ("SITEID", "Study Site Identifier", "Char", "DM.SITEID"),
        ("AGE", "Age", "Num", "DM.AGE"),
        ("SEX", "Sex", "Char", "DM.SEX"),
        ("ARMCD", "Planned Arm Code", "Char", "DM.ARMCD"),
        ("TRT01P", "Planned Treatment for Period 01", "Char", "DM.ARM"),
        ("TRT01A", "Actual Treatment for Period 01", "Char", "DM.ACTARM"),
        ("RANDFL", "Randomized Population Flag", "Char", "Y: every ADSL subject was randomized"),
        ("ITTFL", "Intent-To-Treat Population Flag", "Char", "Y unless the randomization was invalidated"),
        ("SAFFL", "Safety Population Flag", "Char", "Y when operated (a surgery record exists)"),
        ("PPROTFL", "Per-Protocol Population Flag", "Char", "ITTFL=Y and the primary-endpoint visit done in window"),
        ("RANDDT", "Date of Randomization", "Char", "The site's date of SubjectRandomized"),
        ("TRTSDT", "Date of First Exposure to Treatment", "Char", "DM.RFSTDTC: the surgery (day 0)"),
        ("EOSSTT", "End of Study Status", "Char", "COMPLETED, DISCONTINUED or ONGOING"),
        ("EOSDT", "End of Study Date", "Char", "Completion, withdrawal or death date"),
        ("DCSREAS", "Reason for Discontinuation from Study", "Char", "Withdrawal reason category, or DEATH"),
        ("DTHFL", "Subject Death Flag", "Char", "DM.DTHFL"),
    ],
    "ADEFF": [
        ("STUDYID", "Study Identifier", "Char", "ADSL.STUDYID"),
        ("USUBJID", "Unique Subject Identifier", "Char", "ADSL.USUBJID"),
        ("TRTP", "Planned Treatment", "Char", "ADSL.TRT01P"),
        ("PARAMCD", "Parameter Code", "Char", "FOLSURV, HAIRDENS, SATIS, MLOSSI, LOSDI"),
        ("PARAM", "Parameter", "Char", "The assessment with its unit"),
        ("AVISIT", "Analysis Visit", "Char", "Protocol visit name"),
        ("AVISITN", "Analysis Visit (N)", "Num", "Order in the protocol schedule"),
        ("ADT", "Analysis Date", "Char", "VisitCompleted.visit_date (current record)"),
        ("ADY", "Analysis Relative Day", "Num", "Days since the surgery, which the protocol counts as day 0"),
        (
            "AVAL",
            "Analysis Value",
            "Num",
            "The recorded value; follicle survival and hair density the blinded assessor's count where made",
        ),
        ("BASE", "Baseline Value", "Num", "Empty: the protocol makes no assessment before the surgery"),
        ("CHG", "Change from Baseline", "Num", "Empty, as BASE"),
        ("ANL01FL", "Analysis Flag 01", "Char", "Y: randomization valid and the visit done in its window"),
        ("SRCDOM", "Source Data", "Char", "VISITS: the visit events; ASSESSMENTS: the blinded assessor's counts"),
        (
            "SRCEVID",
            "Source Event Identifier",
            "Char",
            "The id of the VisitCompleted or EndpointAssessed event the value comes from",
        ),
    ],
}


def _flag(value: bool) -> str:
    return "Y" if value else "N"


async def adsl(conn: Connection, protocol: ProtocolDefinition) -> Rows:
    primary = protocol.schedule.primary_endpoint.code
    extra = {
        r["subject_id"]: r
        for r in await conn.fetch(
            """SELECT r.subject_id, r.invalidated, r.randomized_on, s.completed_on, s.withdrawn_on,
                      s.withdrawal_reason, s.died_on, p.subject_id IS NOT NULL AS operated,
                      coalesce(v.status = $2 AND v.in_window, false) AS primary_in_window
                 FROM randomizations AS r
                 JOIN subjects AS s USING (subject_id)
                 LEFT JOIN procedures AS p USING (subject_id)
                 LEFT JOIN visits AS v ON v.subject_id = r.subject_id AND v.visit = $1""",
            primary,
            VisitStatus.COMPLETED.value,
        )
    }
    out: Rows = []
    for row in await dm(conn, protocol):
        r = extra.get(row["SUBJID"])
        if r is None:
            continue  # consented, never allocated: in DM, not in the analysis datasets
        ended = r["completed_on"] or r["withdrawn_on"] or r["died_on"]
        status = "COMPLETED" if r["completed_on"] else ("DISCONTINUED" if ended else "ONGOING")
        reason = "DEATH" if r["died_on"] and not r["completed_on"] else (r["withdrawal_reason"] or "").upper()
        out.append(
            {
                "STUDYID": row["STUDYID"],
                "USUBJID": row["USUBJID"],
                "SUBJID": row["SUBJID"],
                "SITEID": row["SITEID"],
                "AGE": row["AGE"],
                "SEX": row["SEX"],
                "ARMCD": row["ARMCD"],
                "TRT01P": row["ARM"],
                "TRT01A": row["ACTARM"],
                "RANDFL": "Y",
                "ITTFL": _flag(not r["invalidated"]),
                "SAFFL": _flag(r["operated"]),
                "PPROTFL": _flag(not r["invalidated"] and r["primary_in_window"]),
                "RANDDT": r["randomized_on"].isoformat() if r["randomized_on"] else "",
                "TRTSDT": row["RFSTDTC"],
                "EOSSTT": status,
                "EOSDT": ended.isoformat() if ended else "",
                "DCSREAS": reason if status == "DISCONTINUED" else "",
                "DTHFL": row["DTHFL"],
            }
        )
    return out


async def adeff(conn: Connection, protocol: ProtocolDefinition) -> Rows:
    visits = {v.code: (i, v.name) for i, v in enumerate(protocol.schedule.follow_up, start=1)}
    arms = {a.code: a.name for a in protocol.arms}
    out: Rows = []
    for record in await endpoint_records(conn):
        number, name = visits[record.visit]
        for assessment in ASSESSMENTS:
            blind = record.assessment_id is not None and assessment.paramcd in BLIND_PARAMETERS
            row: dict[str, Any] = {
                "STUDYID": protocol.trial_id,
                "USUBJID": f"{protocol.trial_id}-{record.subject_id}",
                "TRTP": arms.get(record.arm, record.arm),
                "PARAMCD": assessment.paramcd,
                "PARAM": assessment.param,
                "AVISIT": name,
                "AVISITN": number,
                "ADT": record.visit_date.isoformat(),
                "ADY": record.study_day,
                "AVAL": getattr(record, assessment.column),
                "BASE": "",
                "CHG": "",
                "ANL01FL": "Y" if record.randomization_valid and record.in_window else "",
                "SRCDOM": "ASSESSMENTS" if blind else "VISITS",
                "SRCEVID": str(record.assessment_id if blind else record.event_id),
            }
            out.append(row)
    return out


DATASETS = {"ADSL": adsl, "ADEFF": adeff}
