"""An ODM 1.3.2 document checked by code that did not write it: CDISC's ODM 1.3.2 XML Schema (shipped with
odmlib, validated with xmlschema), odmlib's ODM 1.3.2 object model (required attributes, enumerated and
typed values), its metadata conformance rules (cerberus schemas of the ODM metadata) and its OID checks
(unique, every reference defined and of the right kind, no definition unused), plus what a loader of
clinical data relies on: every value of its item's data type and, where it has one, code list.
"""

import copy
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from xml.etree import ElementTree as ET

import xmlschema
from odmlib import loader, odm_loader
from odmlib.odm_1_3_2.rules.metadata_schema import MetadataSchema
from odmlib.oid_generator import create_oid_checker
from odmlib.schema_manager import get_schema_path

NS = "http://www.cdisc.org/ns/odm/v1.3"
SCHEMA = xmlschema.XMLSchema(get_schema_path("odm", "1.3.2"))
METADATA = ("Protocol", "StudyEventDef", "FormDef", "ItemGroupDef", "ItemDef", "CodeList")


def _conforms(value: str, data_type: str) -> bool:
    try:
        match data_type:
            case "integer":
                int(value)
            case "float":
                Decimal(value)
            case "date":
                date.fromisoformat(value)
            case "datetime":
                return datetime.fromisoformat(value).tzinfo is not None
            case "boolean":
                return value in ("true", "false")
    except (ValueError, InvalidOperation):
        return False
    return True


def findings(document: bytes) -> list[str]:
    """Everything wrong with the document; empty when it passes."""
    found = [f"ODM 1.3.2 schema: {e.reason} at {e.path}" for e in SCHEMA.iter_errors(document.decode())][:20]
    reading = loader.ODMLoader(odm_loader.XMLODMLoader(model_package="odm_1_3_2", ns_uri=NS))
    try:
        reading.load_odm_string(document.decode())
        odm = reading.root()
    except (TypeError, ValueError) as exc:
        return [*found, f"odmlib model: {exc}"]
    versions = {mdv.OID: mdv for mdv in odm.Study[0].MetaDataVersion}
    rules = MetadataSchema()  # type: ignore[no-untyped-call]
    for mdv in versions.values():
        for name in METADATA:
            for definition in getattr(mdv, name) if isinstance(getattr(mdv, name), list) else [getattr(mdv, name)]:
                try:
                    rules.check_conformance(definition.to_dict(), name)  # type: ignore[no-untyped-call]
                except ValueError as exc:
                    found.append(f"{mdv.OID} {name} {getattr(definition, 'OID', '')}: {exc}")
    found += _oids_of_each_version(document)
    for clinical in odm.ClinicalData:
        mdv = versions.get(clinical.MetaDataVersionOID)
        if mdv is None:
            found.append(f"ClinicalData under {clinical.MetaDataVersionOID}: no such MetaDataVersion")
            continue
        items = {i.OID: i for i in mdv.ItemDef}
        codes = {c.OID: {i.CodedValue for i in c.CodeListItem} for c in mdv.CodeList}
        for subject in clinical.SubjectData:
            for event in subject.StudyEventData:
                for form in event.FormData:
                    for group in form.ItemGroupData:
                        for data in group.ItemData:
                            item = items.get(data.ItemOID)
                            where = f"{subject.SubjectKey} {data.ItemOID}={data.Value!r}"
                            if item is None:
                                found.append(f"{where}: no ItemDef")
                            elif not _conforms(data.Value, item.DataType):
                                found.append(f"{where}: not {item.DataType}")
                            elif item.CodeListRef and data.Value not in codes[item.CodeListRef.CodeListOID]:
                                found.append(f"{where}: not in {item.CodeListRef.CodeListOID}")
    return found


def _oids_of_each_version(document: bytes) -> list[str]:
    """odmlib's OID checks, on the document as each metadata version alone would make it (its definitions, the
    sites' references to it, the clinical data under it): an OID is unique and resolved within its version."""
    found: list[str] = []
    root = ET.fromstring(document)
    study = root.find(f"{{{NS}}}Study")
    assert study is not None
    oids = [mdv.get("OID", "") for mdv in study.iterfind(f"{{{NS}}}MetaDataVersion")]
    for oid in oids:
        alone = copy.deepcopy(root)
        alone_study = alone.find(f"{{{NS}}}Study")
        assert alone_study is not None
        for other in [m for m in alone_study.iterfind(f"{{{NS}}}MetaDataVersion") if m.get("OID") != oid]:
            alone_study.remove(other)
        for location in alone.iterfind(f"{{{NS}}}AdminData/{{{NS}}}Location"):
            for ref in [r for r in location if r.get("MetaDataVersionOID") != oid]:
                location.remove(ref)
        for clinical in [c for c in alone.iterfind(f"{{{NS}}}ClinicalData") if c.get("MetaDataVersionOID") != oid]:
            alone.remove(clinical)
        reading = loader.ODMLoader(odm_loader.XMLODMLoader(model_package="odm_1_3_2", ns_uri=NS))
        reading.load_odm_string(ET.tostring(alone, encoding="unicode"))
        checker = create_oid_checker("odm_1_3_2")
        try:
            reading.root().verify_oids(checker)
            orphans = {
                o: kind for o, kind in reading.root().unreferenced_oids(checker).items() if kind != "LocationOID"
            }
            if orphans:
                found.append(f"{oid}: defined, never used: {orphans}")
        except ValueError as exc:
            found.append(f"{oid} OIDs: {exc}")
    return found
