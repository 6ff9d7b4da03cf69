"""CDISC ODM 1.3.2 snapshot of the clinical data as the sites entered it, for an EDC, a sponsor's warehouse
or a regulator's reviewer: the study's metadata (events, forms, item groups, items, code lists), the sites
(AdminData locations) and every subject's data by event, form and item group, from the read models.

One table (`GROUPS`) says what is exported: each item group's form, event, rows and items. Dates are the
sites' local dates, instants ISO 8601 with their offset; an empty value is left out (ODM: not collected).
"""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from xml.etree import ElementTree as ET

from shared.contracts.amendments import ProtocolVersions
from shared.contracts.dictionary import FORM_RECORDED, DataDictionary, ItemType, Translated
from shared.contracts.photographs import PHOTOGRAPH_VISITS
from shared.contracts.protocol import ProtocolDefinition
from shared.readmodels.amendments import protocol_versions, subject_versions
from shared.readmodels.states import VisitStatus
from shared.runtime.postgres import Connection

NS = "http://www.cdisc.org/ns/odm/v1.3"
SOURCE_SYSTEM = "trial-backend"


@dataclass(frozen=True)
class Item:
    """A column of the group's rows. One a site entered names its data dictionary item (`form.path`), whose
    question it takes in both languages; one the system derived (a BMI, an outcome) has its own English label."""

    column: str
    label: str = ""
    data_type: str = "text"  # ODM DataType: text, integer, float, date, datetime, boolean
    codelist: str | None = None
    entered: str | None = None  # the data dictionary item: "screening.sex"


@dataclass(frozen=True)
class Group:
    """An item group, its form and event, and the query giving its rows (`subject_id`, `site`, `repeat_key`
    for repeating groups, `event` where the event comes from the row, and one column per item)."""

    oid: str
    name: str
    form: str
    event: str | None
    query: str
    items: tuple[Item, ...]
    repeating: bool = False
    visits: tuple[str, ...] = ()  # the events of a group whose event comes from the row, when not every visit
    # A collected form's: each row says the version it was entered under (`entered_under`), whose metadata it is in.
    by_version: bool = False


# The event a log's entries are in (concomitant medications, medical history): entered at any time from consent.
LOGS = "LOGS"


@dataclass(frozen=True)
class Event:
    oid: str
    name: str
    kind: str  # ODM StudyEventDef Type: Scheduled, Unscheduled, Common


FORM_NAMES = {
    "CONSENT": "Informed consent",
    "SCREENING": "Screening and eligibility",
    "RANDOMIZATION": "Randomization",
    "SURGERY": "Surgery (day 0)",
    "VISIT": "Follow-up visit",
    "AE": "Adverse event",
    "PHOTOGRAPH": "Scalp photographs (source documents)",
    "END": "End of participation",
}

GROUPS: tuple[Group, ...] = (
    Group(
        "CONSENT",
        "Informed consent",
        "CONSENT",
        "SCR",
        """SELECT subject_id, site, consented_on, consent_form_version, consent_declined_on,
                  consent_declined_reason, consent_withdrawn_on FROM subjects""",
        (
            Item("consented_on", "Date consent was signed", "date"),
            Item("consent_form_version", entered="consent.consent_form_version"),
            Item("consent_declined_on", "Date consent was declined", "date"),
            Item("consent_declined_reason", codelist="CONSENT_REFUSAL_REASON", entered="consent-refusal.reason"),
            Item("consent_withdrawn_on", "Date consent was withdrawn", "date"),
        ),
    ),
    Group(
        "SCREENING",
        "Screening",
        "SCREENING",
        "SCR",
        """SELECT subject_id, site, screening_number::text AS repeat_key, screening_number, screening_date,
                  age_years, sex, bmi, eligible, protocol_version FROM screening_log""",
        (
            Item("screening_number", "Screening number (a rescreening counts up)", "integer"),
            Item("screening_date", data_type="date", entered="screening.screening_date"),
            Item("age_years", data_type="integer", entered="screening.age_years"),
            Item("sex", codelist="SEX", entered="screening.sex"),
            Item("bmi", "Body mass index (kg/m2)", "float"),
            Item("eligible", "Eligible", "boolean"),
            Item("protocol_version", "Protocol version the criteria were evaluated under"),
        ),
        repeating=True,
    ),
    Group(
        "CRITERION",
        "Eligibility criterion",
        "SCREENING",
        "SCR",
        """SELECT c.subject_id, l.site, c.screening_number || '.' || c.code AS repeat_key, c.screening_number,
                  c.code, c.kind, c.outcome, c.blocks, c.value
             FROM screening_criteria AS c JOIN screening_log AS l USING (subject_id, screening_number)""",
        (
            Item("screening_number", "Screening number", "integer"),
            Item("code", "Criterion code (IN01-IN09, EX01-EX11)"),
            Item("kind", "Inclusion or exclusion", codelist="CRITERION_KIND"),
            Item("outcome", "Outcome", codelist="CRITERION_OUTCOME"),
            Item("blocks", "Makes the subject ineligible", "boolean"),
            Item("value", "Value the outcome was decided on"),
        ),
        repeating=True,
    ),
    Group(
        "RANDOMIZATION",
        "Randomization",
        "RANDOMIZATION",
        "D0",
        """SELECT subject_id, site, randomization_number, arm, randomized_on, invalidated, invalidation_reason
             FROM randomizations""",
        (
            Item("randomization_number", "Randomization number", "integer"),
            Item("arm", "Arm", codelist="ARM"),
            Item("randomized_on", "Date randomized", "date"),
            Item("invalidated", "Randomization invalidated", "boolean"),
            Item("invalidation_reason", "Why the randomization was invalidated"),
        ),
    ),
    Group(
        "SURGERY",
        "Surgery",
        "SURGERY",
        "D0",
        """SELECT subject_id, site, procedure_date, surgeon, anaesthesia, recipient_area_cm2, follicular_units,
                  donor_site, fat_harvest_site, harvested_fat_ml, ecm_svf_gel_ml FROM procedures""",
        (
            Item("procedure_date", data_type="date", entered="procedure.procedure_date"),
            Item("surgeon", entered="procedure.surgeon"),
            Item("anaesthesia", codelist="ANAESTHESIA", entered="procedure.anaesthesia"),
            Item("recipient_area_cm2", data_type="float", entered="procedure.recipient_area_cm2"),
            Item("follicular_units", data_type="integer", entered="procedure.follicular_units"),
            Item("donor_site", codelist="DONOR_SITE", entered="procedure.donor_site"),
            Item("fat_harvest_site", codelist="FAT_HARVEST_SITE", entered="procedure.fat_graft.fat_harvest_site"),
            Item("harvested_fat_ml", data_type="float", entered="procedure.fat_graft.harvested_fat_ml"),
            Item("ecm_svf_gel_ml", data_type="float", entered="procedure.fat_graft.ecm_svf_gel_ml"),
        ),
    ),
    Group(
        "VISIT",
        "Follow-up assessments",
        "VISIT",
        None,
        f"""SELECT subject_id, site, visit AS event, status, visit_date, in_window, hair_density_per_cm2,
                  grafts_surviving, follicle_survival_pct, satisfaction, mlossi, losdi, photo_reference
             FROM visits WHERE status IN ('{VisitStatus.COMPLETED}', '{VisitStatus.MISSED}')""",
        (
            Item("status", "Visit status", codelist="VISIT_STATUS"),
            Item("visit_date", data_type="date", entered="visit.visit_date"),
            Item("in_window", "Within the visit window", "boolean"),
            Item("hair_density_per_cm2", data_type="float", entered="visit.hair_density_per_cm2"),
            Item("grafts_surviving", data_type="integer", entered="visit.grafts_surviving"),
            Item("follicle_survival_pct", "Follicle survival (%)", "float"),
            Item("satisfaction", data_type="integer", entered="visit.satisfaction"),
            Item("mlossi", data_type="integer", entered="visit.mlossi"),
            Item("losdi", data_type="integer", entered="visit.losdi"),
            Item("photo_reference", entered="visit.photo_reference"),
        ),
    ),
    Group(
        "AE",
        "Adverse event",
        "AE",
        "AE",
        """SELECT subject_id, site, ae_id::text AS repeat_key, term, onset_date, site_aware_at, grade, serious,
                  array_to_string(seriousness, ' ') AS seriousness, fat_graft_relatedness,
                  hair_transplantation_relatedness, action_taken, outcome, follow_ups FROM adverse_events""",
        (
            Item("term", entered="adverse-event.term"),
            Item("onset_date", data_type="date", entered="adverse-event.onset_date"),
            Item("site_aware_at", data_type="datetime", entered="adverse-event.site_aware_at"),
            Item("grade", data_type="integer", entered="adverse-event.grade"),
            Item("serious", "Serious", "boolean"),
            Item("seriousness", "Seriousness criteria (space separated)"),
            Item("fat_graft_relatedness", codelist="RELATEDNESS", entered="adverse-event.relationship.fat_graft"),
            Item(
                "hair_transplantation_relatedness",
                codelist="RELATEDNESS",
                entered="adverse-event.relationship.hair_transplantation",
            ),
            Item("action_taken", codelist="ACTION_TAKEN", entered="adverse-event.action_taken"),
            Item("outcome", codelist="AE_OUTCOME", entered="adverse-event.outcome"),
            Item("follow_ups", "Follow-up reports", "integer"),
        ),
        repeating=True,
    ),
    Group(
        "END",
        "End of participation",
        "END",
        "END",
        """SELECT subject_id, site, completed_on, withdrawn_on, withdrawal_reason, died_on FROM subjects
            WHERE coalesce(completed_on, withdrawn_on, died_on) IS NOT NULL""",
        (
            Item("completed_on", "Date the study was completed", "date"),
            Item("withdrawn_on", data_type="date", entered="withdrawal.withdrawn_on"),
            Item("withdrawal_reason", codelist="WITHDRAWAL_REASON", entered="withdrawal.reason_category"),
            Item("died_on", "Date of death", "date"),
        ),
    ),
)

# The data dictionary's code lists, by their ODM name: decoded in both languages.
CODELISTS: dict[str, str] = {
    "CONSENT_REFUSAL_REASON": "consent_refusal_reason",
    "SEX": "sex",
    "ANAESTHESIA": "anaesthesia",
    "DONOR_SITE": "donor_site",
    "FAT_HARVEST_SITE": "fat_harvest_site",
    "RELATEDNESS": "relatedness",
    "ACTION_TAKEN": "action_taken",
    "AE_OUTCOME": "ae_outcome",
    "WITHDRAWAL_REASON": "withdrawal_reason",
    "PHOTOGRAPH_VIEW": "photograph_view",
}
# Code lists of the read models' own words (not a form's): the values each column may hold.
FIXED_CODELISTS: dict[str, tuple[str, ...]] = {
    "CRITERION_KIND": ("inclusion", "exclusion"),
    "CRITERION_OUTCOME": ("met", "not_met", "missing"),
    "VISIT_STATUS": ("completed", "missed"),
}


# A collected form's item type, as ODM's DataType.
DATA_TYPES = {
    ItemType.INTEGER: "integer",
    ItemType.DECIMAL: "float",
    ItemType.DATE: "date",
    ItemType.DATETIME: "datetime",
    ItemType.BOOLEAN: "boolean",
}


def collected_groups(dictionary: DataDictionary) -> tuple[Group, ...]:
    """Each collected form as one item group at each of its visits, or, for a log, one repeating group of its
    entries (keyed by the entry's id) in the logs' event; its items as the dictionary declares them (names and
    codes are the dictionary's, held to lowercase words by its own validation)."""
    found = []
    for name, form in dictionary.collected.items():
        columns = ", ".join(f"data->'answers'->>'{item}' AS {item}" for item in form.items)
        where = f"FROM casebook_forms WHERE event_type = '{FORM_RECORDED}' AND data->>'form' = '{name}'"
        found.append(
            Group(
                _oid(name),
                form.title.en,
                _oid(name),
                LOGS if form.log else None,
                f"SELECT subject_id, site, protocol_version AS entered_under, data->>'entry' AS repeat_key, "
                f"{columns} {where}"
                if form.log
                else f"SELECT subject_id, site, protocol_version AS entered_under, data->>'visit' AS event, "
                f"{columns} {where}",
                tuple(
                    Item(
                        item,
                        data_type=DATA_TYPES.get(declared.type, "text"),
                        codelist=_oid(declared.code_list) if declared.code_list else None,
                        entered=f"{name}.{item}",
                    )
                    for item, declared in form.items.items()
                ),
                repeating=form.log,
                visits=form.visits,
                by_version=True,
            )
        )
    return tuple(found)


def _oid(name: str) -> str:
    return name.upper().replace("-", "_")


def photograph_group(protocol: ProtocolDefinition) -> Group:
    """The scalp photographs at each visit they are taken at, by reference: the image is in the object store
    under its SHA-256, which a reviewer checks the file against."""
    return Group(
        "PHOTOGRAPH",
        "Scalp photographs (source documents)",
        "PHOTOGRAPH",
        None,
        """SELECT subject_id, site, visit AS event, sha256 AS repeat_key, view, sha256, media_type, width, height
             FROM scalp_photographs""",
        (
            Item("view", "Standard view", codelist="PHOTOGRAPH_VIEW"),
            Item("sha256", "SHA-256 of the stored image"),
            Item("media_type", "Media type"),
            Item("width", "Width (pixels)", "integer"),
            Item("height", "Height (pixels)", "integer"),
        ),
        repeating=True,
        visits=(*PHOTOGRAPH_VISITS, *(v.code for v in protocol.schedule.follow_up)),
    )


def exported_groups(protocol: ProtocolDefinition) -> tuple[Group, ...]:
    """What is exported: the fixed groups, the photographs' references, then the collected forms'."""
    return (*GROUPS, photograph_group(protocol), *collected_groups(protocol.forms))


def events(protocol: ProtocolDefinition) -> list[Event]:
    return [
        Event("SCR", "Screening", "Scheduled"),
        Event("D0", "Randomization and surgery (day 0)", "Scheduled"),
        *(Event(v.code, v.name, "Scheduled") for v in protocol.schedule.follow_up),
        Event("AE", "Adverse events", "Common"),
        *([Event(LOGS, "Logs kept from consent", "Common")] if protocol.forms.logs else []),
        Event("END", "End of participation", "Common"),
    ]


def forms_of(event: Event, protocol: ProtocolDefinition) -> list[str]:
    """The forms an event holds, in the order they are filled in; the visit form in every follow-up visit."""
    visits = tuple(v.code for v in protocol.schedule.follow_up)
    return list(
        dict.fromkeys(
            g.form for g in exported_groups(protocol) if event.oid in ([g.event] if g.event else g.visits or visits)
        )
    )


def _e(parent: ET.Element | None, tag: str, **attributes: str) -> ET.Element:
    # Unqualified names under the root's default namespace (ElementTree's own default-namespace writing
    # refuses unqualified attributes, and ODM's attributes are unqualified).
    return ET.Element(tag, attributes) if parent is None else ET.SubElement(parent, tag, attributes)


def _text(parent: ET.Element, tag: str, text: str | Translated) -> None:
    """ODM's translated text: each language the dictionary gives (English alone for the system's own words)."""
    element = _e(parent, tag)
    words = text.model_dump() if isinstance(text, Translated) else {"en": text}
    for language, said in words.items():
        _e(element, "TranslatedText", **{"{http://www.w3.org/XML/1998/namespace}lang": language}).text = said


def _value(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _mdv_oid(protocol: ProtocolDefinition) -> str:
    return f"MDV.{protocol.version}"


def _global_variables(study: ET.Element, versions: ProtocolVersions) -> None:
    latest = versions.latest
    variables = _e(study, "GlobalVariables")
    _e(variables, "StudyName").text = latest.trial_id
    _e(variables, "StudyDescription").text = latest.title
    _e(variables, "ProtocolName").text = (
        f"{latest.trial_id} versions {', '.join(v.version for v in versions.all)}"
        if versions.amendments
        else f"{latest.trial_id} version {latest.version}"
    )


def _metadata(study: ET.Element, protocol: ProtocolDefinition) -> None:
    """One version of the protocol, whole: its schedule, forms, items and code lists."""
    dictionary = protocol.forms
    mdv = _e(study, "MetaDataVersion", OID=_mdv_oid(protocol), Name=f"Protocol version {protocol.version}")
    schedule = _e(mdv, "Protocol")
    all_events = events(protocol)
    for order, event in enumerate(all_events, start=1):
        _e(schedule, "StudyEventRef", StudyEventOID=f"SE.{event.oid}", OrderNumber=str(order), Mandatory="No")
    for event in all_events:
        definition = _e(mdv, "StudyEventDef", OID=f"SE.{event.oid}", Name=event.name, Repeating="No", Type=event.kind)
        for order, form in enumerate(forms_of(event, protocol), start=1):
            _e(definition, "FormRef", FormOID=f"F.{form}", OrderNumber=str(order), Mandatory="No")
    exported = exported_groups(protocol)
    for form, name in (FORM_NAMES | {g.form: g.name for g in collected_groups(dictionary)}).items():
        definition = _e(mdv, "FormDef", OID=f"F.{form}", Name=name, Repeating="No")
        for order, group in enumerate((g for g in exported if g.form == form), start=1):
            _e(definition, "ItemGroupRef", ItemGroupOID=f"IG.{group.oid}", OrderNumber=str(order), Mandatory="No")
    for group in exported:
        definition = _e(
            mdv, "ItemGroupDef", OID=f"IG.{group.oid}", Name=group.name, Repeating="Yes" if group.repeating else "No"
        )
        for order, item in enumerate(group.items, start=1):
            _e(definition, "ItemRef", ItemOID=_item_oid(group, item), OrderNumber=str(order), Mandatory="No")
    for group in exported:
        for item in group.items:
            definition = _e(mdv, "ItemDef", OID=_item_oid(group, item), Name=item.column, DataType=item.data_type)
            question = dictionary.item(item.entered).label if item.entered else item.label
            _text(definition, "Description", question)
            _text(definition, "Question", question)
            if item.codelist:
                _e(definition, "CodeListRef", CodeListOID=f"CL.{item.codelist}")
    codes: dict[str, dict[str, str | Translated]] = {"ARM": {a.code: a.name for a in protocol.arms}}
    collected = {
        _oid(i.code_list): i.code_list for f in dictionary.collected.values() for i in f.items.values() if i.code_list
    }
    codes |= {
        name: {c.code: c.decode for c in dictionary.code_lists[lst]} for name, lst in (CODELISTS | collected).items()
    }
    codes |= {name: {v: v.replace("_", " ") for v in values} for name, values in FIXED_CODELISTS.items()}
    for name, decodes in codes.items():
        codelist = _e(mdv, "CodeList", OID=f"CL.{name}", Name=name, DataType="text")
        for value, decode in decodes.items():
            _text(_e(codelist, "CodeListItem", CodedValue=value), "Decode", decode)


def _item_oid(group: Group, item: Item) -> str:
    return f"IT.{group.oid}.{item.column.upper()}"


async def _admin(root: ET.Element, conn: Connection, versions: ProtocolVersions, as_of: datetime) -> None:
    """Every site, with the date it began using each metadata version: the first version from its first subject
    (else the export), each amendment's from the site's day for it."""
    first = {
        r["site"]: r["first"]
        for r in await conn.fetch("SELECT site, min(first_event_at) AS first FROM subjects GROUP BY site")
    }
    latest = versions.latest
    admin = _e(root, "AdminData", StudyOID=latest.trial_id)
    for site in latest.sites:
        location = _e(admin, "Location", OID=f"LOC.{site.code}", Name=site.name, LocationType="Site")
        began = {versions.first.version: latest.local_date(site.code, first.get(site.code, as_of))}
        began |= {a.version: a.effective[site.code] for a in versions.amendments if site.code in a.effective}
        for version, effective in began.items():
            _e(
                location,
                "MetaDataVersionRef",
                StudyOID=latest.trial_id,
                MetaDataVersionOID=f"MDV.{version}",
                EffectiveDate=effective.isoformat(),
            )


async def _clinical(
    root: ET.Element, conn: Connection, protocol: ProtocolDefinition, subjects: set[str], *, first: str
) -> None:
    """The data under this version's metadata: these subjects' (who stand under it), and every subject's collected
    forms entered under it (a record projected before versions were kept, under the `first`); without any, no
    ClinicalData but the first version's."""
    # subject → event → form → [(group, row)]
    data: dict[str, dict[str, dict[str, list[tuple[Group, Any]]]]] = {}
    sites: dict[str, str] = {}
    exported = exported_groups(protocol)
    for group in exported:
        for row in await conn.fetch(group.query):
            if group.by_version:
                if (row["entered_under"] or first) != protocol.version:
                    continue
            elif row["subject_id"] not in subjects:
                continue
            sites[row["subject_id"]] = row["site"]
            event = group.event or row["event"]
            data.setdefault(row["subject_id"], {}).setdefault(event, {}).setdefault(group.form, []).append((group, row))
    if not data and protocol.version != first:
        return
    clinical = _e(root, "ClinicalData", StudyOID=protocol.trial_id, MetaDataVersionOID=_mdv_oid(protocol))
    order = [e.oid for e in events(protocol)]
    for subject in sorted(data):
        subject_data = _e(clinical, "SubjectData", SubjectKey=subject)
        _e(subject_data, "SiteRef", LocationOID=f"LOC.{sites[subject]}")
        for event in sorted(data[subject], key=order.index):
            event_data = _e(subject_data, "StudyEventData", StudyEventOID=f"SE.{event}")
            for form, groups in data[subject][event].items():
                form_data = _e(event_data, "FormData", FormOID=f"F.{form}")
                for group, row in sorted(groups, key=lambda g: (exported.index(g[0]), g[1].get("repeat_key") or "")):
                    keys = {"ItemGroupRepeatKey": row["repeat_key"]} if group.repeating else {}
                    group_data = _e(form_data, "ItemGroupData", ItemGroupOID=f"IG.{group.oid}", **keys)
                    for item in group.items:
                        value = _value(row[item.column])
                        if value is not None:
                            _e(group_data, "ItemData", ItemOID=_item_oid(group, item), Value=value)


async def odm_snapshot(conn: Connection, protocol: ProtocolDefinition, as_of: datetime) -> str:
    """The ODM 1.3.2 snapshot document (XML text) as of `as_of`: one metadata version per version of the protocol,
    and each subject's data under the version they stand under (`subject_versions`), but for their collected forms
    and logs, each under the version it was entered under."""
    versions = await protocol_versions(conn, protocol)
    stamp = as_of.isoformat(timespec="seconds")
    root = _e(
        None,
        "ODM",
        xmlns=NS,
        FileType="Snapshot",
        Granularity="All",
        FileOID=f"{protocol.trial_id}.{as_of:%Y%m%dT%H%M%S}",
        CreationDateTime=stamp,
        AsOfDateTime=stamp,
        ODMVersion="1.3.2",
        Originator=protocol.trial_id,
        SourceSystem=SOURCE_SYSTEM,
    )
    study = _e(root, "Study", OID=protocol.trial_id)
    _global_variables(study, versions)
    for version in versions.all:
        _metadata(study, version)
    await _admin(root, conn, versions, as_of)
    under = await subject_versions(conn, versions)
    for version in versions.all:
        subjects = {s for s, v in under.items() if v == version.version}
        await _clinical(root, conn, version, subjects, first=versions.first.version)
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document.decode()
