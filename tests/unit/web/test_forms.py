"""The web app's forms from the gateway's schemas, and what a browser posts back into the gateway's JSON."""

from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from starlette.datastructures import FormData

from services.web.forms import FormPage, fields, filled, parsed
from services.web.gateway import resolve
from shared.contracts.amendments import ProtocolVersions
from shared.contracts.forms import AdverseEventForm, ProcedureForm, ScreeningForm
from shared.contracts.protocol import cached_protocol
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE

PROTOCOL = cached_protocol(DEFAULT_PROTOCOL_FILE)


def schema_of(form: type[BaseModel]) -> dict[str, Any]:
    """As the gateway's OpenAPI document gives it, references resolved."""
    schema = form.model_json_schema()
    resolved: dict[str, Any] = resolve(schema, schema)
    return resolved


def test_a_schema_becomes_labelled_fields_of_the_right_kind_without_the_ones_the_app_fills() -> None:
    specs = {f.name: f for f in fields(schema_of(ScreeningForm), skip=frozenset({"supersedes", "reason"}))}
    assert "supersedes" not in specs and "reason" not in specs
    assert specs["screening_date"].kind == "date" and specs["screening_date"].required
    assert specs["pregnant"].kind == "boolean" and specs["sex"].kind == "choice"
    assert specs["sex"].options == ("female", "male")
    serology = specs["serology"]
    assert serology.kind == "group" and serology.children[0].name == "serology.hiv"
    assert specs["contraindications"].kind == "choices"


def test_what_is_posted_becomes_the_gateways_json_and_what_is_left_empty_is_left_out() -> None:
    specs = fields(schema_of(ScreeningForm))
    posted = FormData(
        [
            ("screening_date", "2026-11-24"),
            ("weight_kg", " 55 "),
            ("pregnant", "false"),
            ("scalp_infection", ""),  # not known: left out, the criterion is then missing
            ("serology.hiv", "negative"),
            ("serology.hbv", ""),
            ("contraindications", "severe_diabetes"),
        ]
    )
    body = parsed(posted, specs)
    assert body["screening_date"] == "2026-11-24" and body["weight_kg"] == "55"
    assert body["pregnant"] is False and "scalp_infection" not in body
    assert body["serology"] == {"hiv": "negative"}
    assert body["contraindications"] == ["severe_diabetes"]
    assert "biopsy" not in body, "a group left empty is left out"


def test_the_gateways_message_stands_beside_its_field_and_the_posted_values_are_kept() -> None:
    specs = fields(schema_of(AdverseEventForm))
    shown = {f.name: f for f in filled(specs, {"term": "Scalp pruritus", "grade": "9"}, {"grade": "must be 1 to 5"})}
    assert shown["grade"].error == "must be 1 to 5" and shown["grade"].value == "9"
    assert shown["term"].value == "Scalp pruritus" and not shown["term"].error


def test_a_refused_item_is_said_in_the_pages_words_from_its_rule_and_range() -> None:
    from services.gateway.openapi import corrected
    from services.web.forms import explained
    from services.web.i18n import translator

    schema = schema_of(ScreeningForm)
    bare = {"paths": {}, "components": {"schemas": {"ScreeningForm": schema}}}
    document = corrected(bare, ProtocolVersions(PROTOCOL))
    specs = {f.name: f for f in fields(document["components"]["schemas"]["ScreeningForm"])}
    height, zh, en = specs["height_cm"], translator("zh"), translator("en")
    assert height.kind == "number" and (height.low, height.high, height.unit) == (100, 230, "cm")
    assert explained(height, "greater_than_equal", "Input should be greater than or equal to 100", zh) == (
        "请填写100至230cm之间的数字。"
    )
    assert explained(height, "value_error", "Value error, a decimal…", en) == "A number from 100 to 230 cm."
    assert explained(specs["screening_date"], "missing", "Field required", zh) == "必填。"
    assert explained(specs["sex"], "enum", "Input should be 'female' or 'male'", zh) == "请从选项中选择。"
    # A rule the page has no words of its own for: a Chinese page asks to check the item, an English one keeps
    # the gateway's words after its own.
    assert explained(height, "decimal_max_places", "at most one digit after the point", zh) == (
        "此项未被接受，请检查后重新填写。"
    )
    assert explained(height, "decimal_max_places", "at most one digit after the point", en) == (
        "Not accepted: at most one digit after the point"
    )
    # A text's length and its written form, never a regular expression.
    surgeon = {f.name: f for f in fields(schema_of(ProcedureForm))}["surgeon"]
    assert explained(surgeon, "string_pattern_mismatch", "String should match pattern '^[A-Z]+$'", en) == (
        "Not written as this item takes it: see its hint."
    )
    assert explained(surgeon, "string_too_long", "String should have at most 64 characters", zh) == (
        "请填写1至64个字符。"
    )


def test_a_date_or_never_item_takes_never_in_either_language_and_is_refused_in_its_own_words() -> None:
    from services.web.forms import explained
    from services.web.i18n import translator

    specs = {f.name: f for f in fields(schema_of(ScreeningForm))}
    started = specs["last_vasodilator_or_immunosuppressant_start"]
    assert started.kind == "date_or_never"
    for written in ("never", "从未", "Never"):
        body = parsed(FormData({started.name: written}), (started,))
        assert body == {started.name: "never"}, written
    assert parsed(FormData({started.name: "2026-01-02"}), (started,)) == {started.name: "2026-01-02"}
    said = explained(started, "date_from_datetime_parsing", "Input should be a valid date", translator("zh"))
    assert said == "请填写日期（年-月-日）或“从未”。"


def test_a_message_about_a_part_of_an_item_stands_beside_the_item() -> None:
    """A list's entry (`contraindications.1`) or one branch of a choice (`started.date`) is about the item."""
    specs = fields(schema_of(ScreeningForm))
    errors = {
        "contraindications.1": "Input should be 'psychiatric' or …",
        "last_vasodilator_or_immunosuppressant_start.date": "Input should be a valid date",
        "serology.hiv": "Input should be 'negative' or 'positive'",
    }
    shown = {f.name: f for f in filled(specs, {}, errors)}
    assert shown["contraindications"].error.startswith("Input should be 'psychiatric'")
    assert shown["last_vasodilator_or_immunosuppressant_start"].error == "Input should be a valid date"
    serology = {c.name: c for c in shown["serology"].children}
    assert serology["serology.hiv"].error and not shown["serology"].error, "a group's item, not the group"


def test_a_date_and_time_typed_in_the_browsers_box_is_the_sites_local_time_and_every_refusal_is_summed_up() -> None:
    specs = fields(schema_of(AdverseEventForm))
    shanghai = ZoneInfo("Asia/Shanghai")
    body = parsed(FormData([("term", "Scalp pruritus"), ("site_aware_at", "2026-12-07T08:00")]), specs, shanghai)
    assert body["site_aware_at"] == "2026-12-07T08:00:00+08:00"
    written = parsed(FormData([("site_aware_at", "2026-12-07T08:00:00+00:00")]), specs, shanghai)
    assert written["site_aware_at"] == "2026-12-07T08:00:00+00:00", "an offset given is kept"
    assert parsed(FormData([("site_aware_at", "today")]), specs, shanghai)["site_aware_at"] == "today"
    refused = filled(specs, {}, {"grade": "Required.", "site_aware_at": "A date and a time."})
    page = FormPage("Adverse event", "/x", refused, key="k")
    assert [f.name for f in page.refused] == [f.name for f in refused if f.name in ("grade", "site_aware_at")]
    assert len(page.refused) == 2


def test_a_trial_rule_that_names_an_item_is_said_beside_it_in_the_pages_words() -> None:
    from services.web.forms import explained
    from services.web.gateway import GatewayProblem
    from services.web.i18n import translator

    refusal = GatewayProblem(
        422,
        {
            "type": "/problems/rule/form.end_after_start",
            "rule": "form.end_after_start",
            "field": "end_date",
            "detail": "x",
        },
    )
    assert refusal.rules_by_field == {"end_date": "form.end_after_start"}
    [said] = refusal.messages("zh").values()
    spec = {f.name: f for f in fields(schema_of(AdverseEventForm))}["onset_date"]
    assert explained(spec, "form.end_after_start", said, translator("zh")) == said == "结束日期早于开始日期。"


def test_an_item_naming_one_of_the_subjects_records_is_a_choice_of_them_in_their_words() -> None:
    from services.web.forms import Field, referring

    named = Field("adverse_event", "Adverse event it treats", "text", refers_to="adverse-event")
    words = {"ae-1": {"en": "Wound infection (2026-02-01)", "zh": "Wound infection（2026-02-01）"}}
    [choice] = referring((named,), {"adverse-event": words})
    assert (choice.kind, choice.options, choice.option_in("ae-1", "zh")) == ("choice", ("ae-1",), words["ae-1"]["zh"])
    assert referring((named,), {}) == (named,), "no records at hand: the item as it is"
