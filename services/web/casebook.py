"""What a subject's casebook offers in the web app, by the gateway's operations: which form comes next, which
corrects which record, which fields the page fills and which are another role's judgement. Pure: no I/O."""

from collections.abc import Callable
from typing import Any

from services.web.gateway import GatewayProblem
from shared.contracts.dictionary import DataDictionary, Item, ItemType, walk

# The forms of a subject's casebook this app offers, by the gateway's operation: its path under the subject, its
# title, and the fields the app fills itself or leaves to another step.
NEW_RECORD = frozenset({"supersedes", "reason"})
CASEBOOK_FORMS: dict[str, tuple[str, str, frozenset[str]]] = {
    "record_consent": ("consent", "consent", NEW_RECORD),
    "screen_subject": ("screening", "screening", NEW_RECORD),
    "record_procedure": ("procedures", "surgery", NEW_RECORD),
    "record_visit": ("visits/{visit}", "visit", NEW_RECORD),
    "report_adverse_event": ("adverse-events", "adverse_event", NEW_RECORD),
    "follow_up_adverse_event": ("adverse-events/follow-up", "follow_up", frozenset({"ae_id"})),
    "withdraw_subject": ("withdrawal", "withdrawal", NEW_RECORD),
}


def correcting(form_name: str) -> tuple[str, dict[str, str]]:
    """The operation that corrects a casebook form (`screening`, `visit-M1`, `ae-<id>`), and what the page fills."""
    kind, _, rest = form_name.partition("-")
    match kind:
        case "consent" if not rest:
            return "record_consent", {}
        case "screening" | "procedure" | "withdrawal" if not rest:
            return {"screening": "screen_subject", "procedure": "record_procedure"}.get(kind, "withdraw_subject"), {}
        case "visit":
            return "record_visit", {"visit": rest}
        case "ae":
            return "report_adverse_event", {}
    raise GatewayProblem(404, {"detail": f"the {form_name} form is not corrected here"})


def recorded_values(form_name: str, data: dict[str, Any]) -> dict[str, Any]:
    """A record's data as the form's fields: a screening keeps the form as the site filled it."""
    return dict(data["form"]) if form_name == "screening" else data


# Fields the app fills from the page (hidden), not the person: which visit, which adverse event.
FROM_PAGE = ("visit", "ae_id")
# A casebook's steps that take no form of their own, by the gateway's path under the subject.
CASEBOOK_STEPS = ("casebook/lock", "casebook/unlock")


def due_forms(view: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    """The casebook's next forms: screening until randomized, then the surgery, then the next scheduled visit; an
    adverse event once consented (safety information is always taken)."""
    due: list[tuple[str, dict[str, str]]] = []
    if view["state"] in ("consented", "screen_failed", "eligible") and not view["arm"]:
        due.append(("screen_subject", {}))
    if view["arm"] and not view["surgery_date"] and not view["withdrawn_on"]:
        due.append(("record_procedure", {}))
    scheduled = [v for v in view["visits"] if v["status"] == "scheduled"]
    if view["surgery_date"] and scheduled and not view["withdrawn_on"]:
        due.append(("record_visit", {"visit": scheduled[0]["visit"]}))
    if view["consented_on"]:
        due.append(("report_adverse_event", {}))
        due += [("follow_up_adverse_event", {"ae_id": ae["ae_id"]}) for ae in view["adverse_events"]]
    if view["arm"] and not view["withdrawn_on"] and not view["completed_on"]:
        due.append(("withdraw_subject", {}))
    return due


def form_title(dictionary: DataDictionary, form_name: str, lang: str) -> str:
    """A casebook form as staff name it, in the page's language: `visit-M1` is "Follow-up visit M1"."""
    declared = dictionary.casebook_form(form_name)
    if declared is None:
        return form_name
    title = dictionary.forms[declared].title.in_(lang)
    kind, _, rest = form_name.partition("-")
    return f"{title} {rest}" if kind == "visit" else f"{title} {rest[:8]}" if kind == "ae" else title


def query_targets(
    dictionary: DataDictionary, form_names: list[str], lang: str
) -> list[tuple[str, list[tuple[str, str]]]]:
    """What a query may be raised on, picked and never typed: each form of the casebook, and each of its items by
    its question in the page's language (a group's items under the group's), as `form|item` values."""
    targets = []
    for form_name in form_names:
        declared = dictionary.casebook_form(form_name)
        items: list[tuple[str, str]] = [(f"{form_name}|", form_title(dictionary, form_name, lang))]
        if declared is not None:
            labels: dict[str, str] = {}
            for path, item in walk(dictionary.forms[declared].items):
                parent, _, _ = path.rpartition(".")
                labels[path] = f"{labels[parent]} › {item.label.in_(lang)}" if parent else item.label.in_(lang)
                if item.type is not ItemType.GROUP:
                    items.append((f"{form_name}|{path}", labels[path]))
        targets.append((form_name, items))
    return targets


def shown_values(
    dictionary: DataDictionary, form_name: str, values: dict[str, Any], lang: str, t: Callable[[str], str]
) -> list[tuple[str, str]]:
    """A record's values as a monitor reads them against source: each item by its question in the page's
    language, coded values decoded, yes or no, units beside the numbers; a group's items under the group's."""
    declared = dictionary.casebook_form(form_name)
    if declared is None:
        return [(name, str(value)) for name, value in values.items()]
    rows: list[tuple[str, str]] = []

    def shown(item: Item, value: Any) -> str:
        if value is None or value == []:
            return "—"
        if value == "never" and item.type is ItemType.DATE_OR_NEVER:
            return t("never")
        if item.type is ItemType.BOOLEAN:
            return t("yes") if value else t("no")
        if item.code_list is not None:
            codes = value if isinstance(value, list) else [value]
            decoded = (dictionary.decode(item.code_list, str(c)) for c in codes)
            return ", ".join(d.in_(lang) if d else str(c) for d, c in zip(decoded, codes, strict=True))
        return f"{value} {item.unit}" if item.unit else str(value)

    def add(items: dict[str, Item], found: dict[str, Any], under: str) -> None:
        for name, item in items.items():
            label = f"{under} › {item.label.in_(lang)}" if under else item.label.in_(lang)
            value = found.get(name)
            if item.type is ItemType.GROUP:
                add(item.items, value if isinstance(value, dict) else {}, label)
            else:
                rows.append((label, shown(item, value)))

    add(dictionary.forms[declared].items, values, "")
    return rows
