"""A questionnaire the trial does not have, added to a copy of the protocol's data dictionary: what a sponsor adds
in one dictionary entry. Tests load the copy and find the form everywhere the dictionary reaches."""

from pathlib import Path
from typing import Any

import yaml

from shared.contracts.protocol import ProtocolDefinition, load_protocol, protocol_document
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE

NAME = "scalp-symptoms"
QUESTIONNAIRE = """
title: {en: Scalp symptoms, zh: 头皮症状}
visits: [M1, M6]
corrections: true
sdtm_domain: QS
example: {assessed_on: "2026-03-02", itch: 2, tightness: mild}
items:
  assessed_on:
    type: date
    required: true
    label: {en: Date assessed, zh: 评估日期}
    sdtm: QS.QSDTC
  itch:
    type: integer
    required: true
    range: {min: 0, max: 10}
    label: {en: Itch, zh: 瘙痒}
    hint: {en: "0 none, 10 the worst imaginable", zh: 0为无，10为可想象的最严重}
  tightness:
    type: code
    code_list: scalp_tightness
    label: {en: Scalp tightness, zh: 头皮紧绷感}
  donor_fat_site_sore:
    type: boolean
    when: fat_graft_arm
    label: {en: Fat harvest site still sore, zh: 脂肪采集部位仍有疼痛}
"""
TIGHTNESS = [
    {"code": "none", "en": "None", "zh": "无"},
    {"code": "mild", "en": "Mild", "zh": "轻度"},
    {"code": "marked", "en": "Marked", "zh": "明显"},
]


def with_the_form(dictionary: dict[str, Any]) -> dict[str, Any]:
    """A data dictionary's document with the questionnaire and its code list added."""
    dictionary["forms"][NAME] = yaml.safe_load(QUESTIONNAIRE)
    dictionary["code_lists"]["scalp_tightness"] = TIGHTNESS
    return dictionary


def with_questionnaire(document: dict[str, Any], folder: Path) -> dict[str, Any]:
    """A protocol definition's document (`protocol_document`) naming a copy of its data dictionary, written in
    `folder`, that has the questionnaire."""
    dictionary = with_the_form(yaml.safe_load(Path(document["forms"]).read_text()))
    copy = folder / "forms-with-questionnaire.yaml"
    copy.write_text(yaml.safe_dump(dictionary, allow_unicode=True, sort_keys=False))
    return document | {"forms": str(copy)}


def protocol_with_questionnaire(folder: Path) -> Path:
    """A copy of the protocol definition whose data dictionary has the questionnaire: the protocol file's path."""
    protocol = folder / "NCT06646146.yaml"
    document = with_questionnaire(protocol_document(DEFAULT_PROTOCOL_FILE), folder)
    protocol.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
    return protocol


def questionnaire_protocol(folder: Path) -> ProtocolDefinition:
    return load_protocol(protocol_with_questionnaire(folder))
