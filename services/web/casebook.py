"""What a subject's casebook offers in the web app, by the gateway's operations: which form comes next, which
corrects which record, which fields the page fills and which are another role's judgement. Pure: no I/O."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from services.web.gateway import GatewayProblem
from shared.contracts.collected import model_name
from shared.contracts.dictionary import DataDictionary, Item, ItemType, walk
from shared.readmodels.states import NOT_TAKING_PART, SubjectState, VisitStatus

SUBJECT = "/v1/sites/{site}/subjects/{subject}/"
# Fields the app fills from the page (hidden), not the person: which visit, which adverse event; and what a new
# record leaves out (a correction's version and reason).
FROM_PAGE = ("visit", "ae_id")
SKIPPED = frozenset({"supersedes", "reason", *FROM_PAGE})


@dataclass(frozen=True)
class CasebookForm:
    """A form of a subject's casebook as the gateway takes it: its operation, its path under the subject (with
    `{visit}` where the visit is in the path) and the data dictionary's form it is."""

    operation: str
    path: str
    form: str
    visits: tuple[str, ...] = ()  # a collected form's
    log: bool = False  # a log's: a new entry is posted to the log, a correction to `{entry}` below it


def casebook_forms(document: dict[str, Any], dictionary: DataDictionary) -> dict[str, CasebookForm]:
    """Every form the gateway takes about one subject whose body is a form of this data dictionary (one version's),
    by its operation: read from the gateway's own document (a collected form's operation names it, `x-form`), so a
    form the dictionary gains is offered with no change here."""
    by_model = {form.model or model_name(name): name for name, form in dictionary.forms.items()}
    found: dict[str, CasebookForm] = {}
    for path, item in document["paths"].items():
        post = item.get("post")
        if post is None or not path.startswith(SUBJECT):
            continue
        body = post.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
        form = post.get("x-form") or by_model.get(body.get("$ref", "").rsplit("/", 1)[-1])
        if form in dictionary.forms:
            operation, under = post["operationId"], path.removeprefix(SUBJECT)
            declared = dictionary.forms[form]
            found[operation] = CasebookForm(operation, under, form, declared.visits, declared.log)
    return found


def correcting(
    forms: dict[str, CasebookForm], dictionary: DataDictionary, form_name: str
) -> tuple[CasebookForm, dict[str, str]]:
    """What corrects a casebook form (`screening`, `visit-M1`, `ae-<id>`, `scalp-symptoms-M6`, a log's
    `concomitant-medication-<entry>`): the form it is an instance of, posted again with the visit its name gives,
    or to the log's entry."""
    declared = dictionary.casebook_form(form_name)
    log = declared in dictionary.logs
    found = next((f for f in forms.values() if f.form == declared and ("{entry}" in f.path) == log), None)
    if found is None or not dictionary.forms[found.form].corrections:
        raise GatewayProblem.of(404, "not-found", f"the {form_name} form is not corrected here")
    if log:
        return found, {"entry": form_name.removeprefix(f"{declared}-")}
    return found, {"visit": form_name.rpartition("-")[2]} if "{visit}" in found.path else {}


# A casebook's steps that take no form of their own, by the gateway's path under the subject.
CASEBOOK_STEPS = ("casebook/lock", "casebook/unlock")
# The steps said before they are taken (`Pages.unconfirmed`), by operation or casebook step: their consequence.
CONSEQUENCES = {
    "withdraw_subject": "confirm_withdrawal",
    "casebook/lock": "confirm_lock",
    "casebook/unlock": "confirm_unlock",
}


def due_forms(
    view: dict[str, Any],
    forms: dict[str, CasebookForm] | None = None,
    *,
    awaiting: list[str] | None = None,
    reconsent: str | None = None,
) -> list[tuple[str, dict[str, str]]]:
    """The casebook's next forms: screening once consented, again after a screen failure (not while a screening
    waits for the investigator's judgement, `awaiting`, which completes it), then the surgery, then the next
    scheduled visit and each collected form of a visit done; a log's new entry while the subject takes part from
    consent; an adverse event once consented (safety information is always taken). A revised consent form the
    subject has not signed (`reconsent`) comes first, and the schedule's forms wait for it."""
    if reconsent is not None:
        waiting = {"screen_subject", "record_procedure", "record_visit"} | {
            c.operation for c in (forms or {}).values() if c.visits
        }
        rest = due_forms(view, forms, awaiting=awaiting)
        return [("record_consent", {}), *(d for d in rest if d[0] not in waiting)]
    due: list[tuple[str, dict[str, str]]] = []
    if view["state"] in (SubjectState.CONSENTED, SubjectState.SCREEN_FAILED) and not view["arm"] and not awaiting:
        due.append(("screen_subject", {}))
    if view["arm"] and not view["surgery_date"] and not view["withdrawn_on"]:
        due.append(("record_procedure", {}))
    scheduled = [v for v in view["visits"] if v["status"] == VisitStatus.SCHEDULED]
    if view["surgery_date"] and scheduled and not view["withdrawn_on"]:
        due.append(("record_visit", {"visit": scheduled[0]["visit"]}))
    recorded = {f["form"] for f in view.get("forms", [])}
    done = [v["visit"] for v in view["visits"] if v["status"] == VisitStatus.COMPLETED]
    if not view["withdrawn_on"]:
        due += [
            (c.operation, {"visit": visit})
            for c in (forms or {}).values()
            for visit in done
            if visit in c.visits and f"{c.form}-{visit}" not in recorded
        ]
    if view["consented_on"] and not view["withdrawn_on"] and not view["consent_withdrawn_on"]:
        due += [(c.operation, {}) for c in (forms or {}).values() if c.log and "{entry}" not in c.path]
    if view["consented_on"]:
        due.append(("report_adverse_event", {}))
        due += [("follow_up_adverse_event", {"ae_id": ae["ae_id"]}) for ae in view["adverse_events"]]
    if view["arm"] and not view["withdrawn_on"] and not view["completed_on"]:
        due.append(("withdraw_subject", {}))
    return due


def next_step(
    state: str,
    *,
    arm: str | None,
    awaiting: list[str],
    surgery_done: bool,
    next_visit: str | None,
    reconsent: str | None = None,
) -> tuple[str, dict[str, str]]:
    """What comes next for a subject, as a `next_<key>` word and its values: a screening that waits for the
    investigator's judgement says so, an eligible subject is ready to randomize, a subject who must sign a revised
    consent form signs it first."""
    if state in NOT_TAKING_PART:
        return "ended", {}
    if reconsent is not None:
        return "reconsent", {"version": reconsent}
    if awaiting:
        return "awaiting_judgement", {"codes": ", ".join(awaiting)}
    if state == SubjectState.CONSENTED:
        return "to_screen", {}
    if state == SubjectState.SCREEN_FAILED:
        return "rescreen", {}
    if not arm:
        return "to_randomize", {}
    if not surgery_done:
        return "surgery", {}
    return ("visit_due", {"visit": next_visit}) if next_visit else ("ended", {})


def form_title(dictionary: DataDictionary, form_name: str, lang: str, entry: Mapping[str, Any] | None = None) -> str:
    """A casebook form as staff name it, in the page's language: `visit-M1` is "Follow-up visit M1", a collected
    form's `scalp-symptoms-M1` "Scalp symptoms M1", an adverse event or a log's entry by its id's first eight
    characters, or, where its answers are at hand (`entry`), by its first (the medication, the condition)."""
    declared = dictionary.casebook_form(form_name)
    if declared is None:
        return form_name
    form = dictionary.forms[declared]
    title = form.title.in_(lang)
    if declared == form_name:
        return title
    if form.log and entry:
        return f"{title}: {entry.get(next(iter(form.items)), '')}"
    at_visit = declared == "visit" or form.visits
    instance = form_name.removeprefix("ae-" if declared == "adverse-event" else f"{declared}-")
    return f"{title} {form_name.rpartition('-')[2] if at_visit else instance[:8]}"


def event_title(
    dictionary: DataDictionary, event_type: str, lang: str, t: Callable[..., str], form: str | None = None
) -> str:
    """What a fact was, as staff say it: the title of the form it records (a collected form's, by the casebook form
    it is a record of, `form`), else its own word (`event_<type>`)."""
    found = dictionary.form_recorded_by(event_type) or (dictionary.casebook_form(form) if form else None)
    return dictionary.forms[found].title.in_(lang) if found else t(f"event_{event_type}", event_type)


def item_labels(dictionary: DataDictionary, form_name: str, lang: str) -> dict[str, str]:
    """Each item of a casebook form by its dotted path, as its question in the page's language (a group's items
    under the group's); the groups themselves are left out."""
    declared = dictionary.casebook_form(form_name)
    if declared is None:
        return {}
    labels: dict[str, str] = {}
    groups = set()
    for path, item in walk(dictionary.forms[declared].items):
        parent, _, _ = path.rpartition(".")
        labels[path] = f"{labels[parent]} › {item.label.in_(lang)}" if parent else item.label.in_(lang)
        if item.type is ItemType.GROUP:
            groups.add(path)
    return {path: label for path, label in labels.items() if path not in groups}


def item_title(dictionary: DataDictionary, form_name: str, path: str, lang: str) -> str:
    """An item of a casebook form as staff name it (a query's target): its question, else its path."""
    return item_labels(dictionary, form_name, lang).get(path, path)


def query_targets(
    dictionary: DataDictionary, form_names: list[str], lang: str
) -> list[tuple[str, list[tuple[str, str]]]]:
    """What a query may be raised on, picked and never typed: each form of the casebook, and each of its items by
    its question in the page's language, as `form|item` values."""
    return [
        (
            form_name,
            [(f"{form_name}|", form_title(dictionary, form_name, lang))]
            + [(f"{form_name}|{path}", label) for path, label in item_labels(dictionary, form_name, lang).items()],
        )
        for form_name in form_names
    ]


def shown_value(dictionary: DataDictionary, item: Item | None, value: Any, lang: str, t: Callable[[str], str]) -> str:
    """One recorded value as staff read it: coded values decoded, yes or no, "never", the unit beside a number."""
    if value is None or value == []:
        return "—"
    if item is None:
        return str(value)
    if value == "never" and item.type is ItemType.DATE_OR_NEVER:
        return t("never")
    if item.type is ItemType.BOOLEAN:
        return t("yes") if value else t("no")
    if item.code_list is not None:
        codes = value if isinstance(value, list) else [value]
        decoded = (dictionary.decode(item.code_list, str(c)) for c in codes)
        return ", ".join(d.in_(lang) if d else str(c) for d, c in zip(decoded, codes, strict=True))
    return f"{value} {item.unit}" if item.unit else str(value)


def shown_values(
    dictionary: DataDictionary, form_name: str, values: dict[str, Any], lang: str, t: Callable[[str], str]
) -> list[tuple[str, str, str]]:
    """A record's values as a monitor reads them against source: each item's dotted path, its question in the
    page's language (a group's items under the group's) and its value (`shown_value`)."""
    declared = dictionary.casebook_form(form_name)
    if declared is None:
        return [(name, name, str(value)) for name, value in values.items()]
    rows: list[tuple[str, str, str]] = []

    def add(items: dict[str, Item], found: dict[str, Any], under: str, path: str) -> None:
        for name, item in items.items():
            label = f"{under} › {item.label.in_(lang)}" if under else item.label.in_(lang)
            value = found.get(name)
            if item.type is ItemType.GROUP:
                add(item.items, value if isinstance(value, dict) else {}, label, f"{path}{name}.")
            else:
                rows.append((f"{path}{name}", label, shown_value(dictionary, item, value, lang, t)))

    add(dictionary.forms[declared].items, values, "", "")
    return rows


def item_changes(
    dictionary: DataDictionary, form_name: str, history: list[dict[str, Any]], lang: str, t: Callable[[str], str]
) -> dict[str, list[dict[str, Any]]]:
    """Each item's changes across a form's records, oldest first: old → new as staff read them, with the record's
    who, when and why. A record's own fields that are no item (a screening's derived BMI) are left out."""
    declared = dictionary.casebook_form(form_name)
    items = dict(walk(dictionary.forms[declared].items)) if declared else {}
    found: dict[str, list[dict[str, Any]]] = {}
    for record in history:
        for change in record.get("changes") or ():
            path = str(change["field"]).removeprefix("form.").removeprefix("answers.")
            if path in items:
                found.setdefault(path, []).append(
                    {
                        "old": shown_value(dictionary, items[path], change["old"], lang, t),
                        "new": shown_value(dictionary, items[path], change["new"], lang, t),
                        "record": record,
                    }
                )
    return found
