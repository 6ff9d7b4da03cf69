"""What every page of the web app shares: rendering in the person's language, who is signed in, the CSRF check, the
casebook's forms from the gateway's schemas, and the casebook page itself (`app.state.pages`, `PagesOf` in routes)."""

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from services.reporting.reports.endpoints import ASSESSMENTS
from services.reporting.reports.index import COLUMNS
from services.web.casebook import (
    SKIPPED,
    CasebookForm,
    casebook_forms,
    due_forms,
    event_title,
    form_title,
    item_title,
    next_step,
    query_targets,
)
from services.web.forms import Field, FormPage, about, explained, fields, filled, referring
from services.web.gateway import GatewayProblem
from services.web.guidance import Advice, advice
from services.web.i18n import CODED_COLUMNS, LANGUAGES, TEXT, VERBATIM_COLUMNS, language, translator
from services.web.session import Cookies, Session
from services.web.versions import side_by_side, versions_of
from shared.contracts.access import Right, may
from shared.contracts.dictionary import walk
from shared.contracts.events import CriterionKind, CriterionOutcome
from shared.contracts.protocol import ProtocolDefinition
from shared.readmodels.datamanagement import SdvStatus, SignatureStatus
from shared.readmodels.matrix import CellStatus, awaiting
from shared.readmodels.states import PARTICIPATION_ENDED, QueryState, VisitStatus

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
# The states and outcomes pages compare with, from their enums: no template spells one.
TEMPLATES.env.globals |= {
    "CriterionOutcome": CriterionOutcome,
    "CriterionKind": CriterionKind,
    "QueryState": QueryState,
    "SdvStatus": SdvStatus,
    "CellStatus": CellStatus,
    "SignatureStatus": SignatureStatus,
    "ended": PARTICIPATION_ENDED,
    "verbatim": VERBATIM_COLUMNS,
}


@dataclass(frozen=True)
class Nested:
    """A list of records inside a report's record, shown as a table of its own."""

    columns: list[str]
    rows: list[list["Said"]]


Said = str | Nested


def column_word(name: str, lang: str) -> str:
    """A report's column or part as a page heads it."""
    return COLUMNS[name].in_(lang) if name in COLUMNS else name.replace("_", " ")


class SignInNeeded(Exception):
    """No session (or an expired one): the browser is sent to sign in, and back here after."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class Pages:
    def __init__(self, cookies: Cookies, protocol: ProtocolDefinition) -> None:
        self.cookies = cookies
        self.protocol = protocol
        # The casebook's forms of each version, as read from the gateway's document (while it stays the same).
        self._casebook_forms: dict[str, tuple[object, dict[str, CasebookForm]]] = {}
        # Each version of the protocol read once: a version never changes.
        self._versions: dict[str, ProtocolDefinition] = {protocol.version: protocol}

    def site_time(self, instant: str | None, site: str) -> str:
        """An instant as the site reads it: its local date and time, with the offset."""
        if not instant:
            return ""
        zone = self.zone(site)
        moment = datetime.fromisoformat(instant)
        local = moment.astimezone(zone) if zone else moment
        return local.strftime("%Y-%m-%d %H:%M (UTC%z)")

    @property
    def trial_site(self) -> str:
        """The site whose time the trial's own facts (not any site's) are read in: the protocol's first."""
        return self.protocol.sites[0].code

    def zone(self, site: str) -> ZoneInfo | None:
        known = self.protocol.site(site)
        return ZoneInfo(known.time_zone) if known else None

    def visit_name(self, code: str, lang: str) -> str:
        """A follow-up visit as staff say it: "W1 · Week 1", "W1 · 第1周"; the surgery's day "D0 · Day of surgery"."""
        found = next((v for v in self.protocol.schedule.follow_up if v.code == code), None)
        if found is None:
            return f"{code} · {translator(lang)('day_0')}" if code == "D0" else code
        return f"{code} · {found.name_zh if lang == 'zh' else found.name}"

    def page(
        self, request: Request, template: str, session: Session | None, status: int = 200, **context: Any
    ) -> Response:
        lang = language(request)
        response = TEMPLATES.TemplateResponse(
            request,
            template,
            {
                "t": translator(lang),
                "lang": lang,
                "other_lang": LANGUAGES[1 - LANGUAGES.index(lang)],
                "session": session,
                "protocol": self.protocol,
                "local": self.site_time,
                "form_title": self.form_title,
                "item_title": functools.partial(item_title, self.protocol.forms),
                "event_title": functools.partial(event_title, self.protocol.forms, t=translator(lang)),
                "criteria": self.protocol.eligibility.criteria,
                "visit_name": self.visit_name,
                "trial_site": self.trial_site,
                **context,
            },
            status_code=status,
        )
        # Pages show one person's data: never kept by a shared cache or the browser's history cache.
        response.headers["Cache-Control"] = "no-store"
        return response

    def form_title(self, form_name: str, lang: str, entry: dict[str, Any] | None = None) -> str:
        """A casebook form's title (`form_title`) in the words of the first version read that declares its form:
        a form an amendment added is named as that version names it."""
        declaring = next((v.forms for v in self._versions.values() if v.forms.casebook_form(form_name)), None)
        return form_title(declaring or self.protocol.forms, form_name, lang, entry)

    def cell(self, lang: str) -> Callable[[str, Any], Said]:
        """How a report's value reads in the page's language: a form by its title, a state, a role or a status by
        its word (`CODED_COLUMNS`), an instant in the trial's time, a list of records as a table of its own, a
        record as its parts by their words, anything else as it is; never JSON text."""
        t = translator(lang)

        def said(column: str, value: Any) -> Said:
            if value is None:
                return ""
            if isinstance(value, bool):
                return t("yes") if value else t("no")
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                columns = list(value[0])
                return Nested(columns, [[said(c, record.get(c)) for c in columns] for record in value])
            if isinstance(value, list):
                return ", ".join(str(said(column, v)) for v in value)
            if isinstance(value, dict):
                return "; ".join(f"{column_word(k, lang)}: {said(k, v)}" for k, v in value.items())
            if not isinstance(value, str):
                return str(value)
            if column == "at" or column.endswith("_at"):
                return self.site_time(value, self.trial_site)
            if column in ("form", "form_kind"):
                return self.form_title(value, lang)
            if column == "event_type":
                return event_title(self.protocol.forms, value, lang, t)
            if column in ("paramcd", "endpoint"):
                found = next((a for a in ASSESSMENTS if value in (a.paramcd, a.param)), None)
                return (found.param_zh if lang == "zh" else found.param) if found else value
            for prefix in CODED_COLUMNS.get(column, ()):
                if f"{prefix}{value}" in TEXT:
                    return t(f"{prefix}{value}")
            return value

        return said

    def signed_in(self, request: Request) -> Session:
        session = self.cookies.session(request)
        if session is None:
            raise SignInNeeded(request.url.path)
        return session

    async def checked_form(self, request: Request, session: Session) -> Any:
        form = await request.form()
        if not session.csrf_matches(str(form.get("csrf", ""))):
            raise GatewayProblem.of(403, "stale-form", "the form is stale or not from this app: open it again")
        return form

    def unconfirmed(
        self, request: Request, session: Session, form: Any, *, heading: str, consequence: str, back: str
    ) -> Response | None:
        """A step with consequences (a withdrawal, a lock, an acknowledgement) is stated before it is taken: the
        first post answers with the consequence and the same form to post again, confirmed (its idempotency key
        kept, so a double submission is one step); None once confirmed."""
        if form.get("confirmed") == "yes":
            return None
        fields = [(name, str(value)) for name, value in form.multi_items() if name != "confirmed"]
        return self.page(
            request, "confirm_step.html", session, heading=heading, consequence=consequence,
            action=request.url.path, fields=fields, back=back,
        )  # fmt: skip

    @staticmethod
    def written(site: str, subject: str, answer: dict[str, Any], back: object = None) -> Response:
        """After a write, the casebook as of it (or the subject's page it was made from, `back`): the page asks
        the gateway to read after its sequence."""
        casebook = f"/sites/{site}/subjects/{subject}"
        page = back if isinstance(back, str) and back.startswith(f"{casebook}/forms/") else casebook
        return RedirectResponse(f"{page}?seen={answer['stream_sequence']}", status_code=303)

    async def casebook_forms(
        self, request: Request, under: ProtocolDefinition | None = None
    ) -> dict[str, CasebookForm]:
        """The casebook's forms of a version of the protocol (the first by default), by the gateway's operation
        (`casebook_forms`): read once per version, and again when the gateway's document changes."""
        version = under or self.protocol
        document = await request.app.state.gateway.openapi(version.version)
        made_from, found = self._casebook_forms.get(version.version, (None, {}))
        if made_from is not document:
            found = casebook_forms(document, version.forms)
            self._casebook_forms[version.version] = (document, found)
        return found

    async def in_force(self, request: Request, session: Session, site: str) -> ProtocolDefinition:
        """The version of the protocol in force at the site today: its forms are entered as it declares them."""
        answer = await request.app.state.gateway.get(session, f"/v1/sites/{site}/protocol")
        return await self.protocol_version(request, session, answer["version"])

    async def protocol_version(self, request: Request, session: Session, version: str) -> ProtocolDefinition:
        if version not in self._versions:
            document = await request.app.state.gateway.get(session, f"/v1/protocol/versions/{version}")
            self._versions[version] = ProtocolDefinition.model_validate(document)
        return self._versions[version]

    async def casebook_form(
        self, request: Request, operation: str, under: ProtocolDefinition | None = None
    ) -> CasebookForm:
        found = (await self.casebook_forms(request, under)).get(operation)
        if found is None:
            raise GatewayProblem.of(404, "not-found", f"no form {operation}")
        return found

    async def form_fields(
        self, request: Request, session: Session, operation: str, under: ProtocolDefinition | None = None
    ) -> tuple[Field, ...]:
        """The operation's fields as this version of the protocol declares its form, but those that are another
        role's judgement (the protocol's delegation: the dictionary says who answers an item, `x-answered-by`)."""
        schema = await request.app.state.gateway.request_schema(operation, under.version if under else None)
        shown = fields(schema, skip=SKIPPED)
        return tuple(f for f in shown if f.answered_by is None or may(session.role, Right(f.answered_by)))

    async def form_page(
        self,
        request: Request,
        session: Session,
        operation: str,
        action: str,
        values: dict[str, Any],
        errors: dict[str, str],
        rules: dict[str, str] | None = None,
        under: ProtocolDefinition | None = None,
    ) -> FormPage:
        """`rules`: the rule code each refused field broke, for the page to say it in its own language; `under`:
        the version of the protocol whose form it is (the first by default)."""
        t = translator(language(request))
        known = rules or {}

        def explain(spec: Field, message: str) -> str:
            return explained(spec, about(known, spec.name), message, t)

        version = under or self.protocol
        specs = filled(await self.form_fields(request, session, operation, version), values, errors, explain)
        message = errors.get("", "")
        title = version.forms.forms[(await self.casebook_form(request, operation, version)).form].title
        return FormPage(title.in_(language(request)), action, specs, key=str(uuid.uuid4()), message=message)

    async def with_records(self, request: Request, session: Session, site: str, subject: str, page: FormPage) -> None:
        """A form whose items name the subject's records offers them as choices (read only where one does)."""
        if any(f.refers_to for f in page.fields):
            view = await request.app.state.gateway.get(session, f"/v1/sites/{site}/subjects/{subject}")
            page.fields = referring(page.fields, subject_records(view))

    async def advice(
        self, request: Request, session: Session, site: str, subject: str, operation: str, values: dict[str, Any]
    ) -> list[Advice]:
        """What the protocol's checks (the version in force at the site's) question in a form about to be posted, in
        the page's language."""
        gateway = request.app.state.gateway
        view = await gateway.get(session, f"/v1/sites/{site}/subjects/{subject}")
        procedure = None
        if operation == "record_visit" and view["surgery_date"]:
            procedure = (await gateway.get(session, f"/v1/sites/{site}/subjects/{subject}/forms/procedure"))["data"]
        in_force = await self.in_force(request, session, site)
        return advice(in_force, operation, values, view, procedure, language(request))

    async def casebook_page(
        self,
        request: Request,
        session: Session,
        site: str,
        subject: str,
        *,
        status: int = 200,
        posted: FormPage | None = None,
        read_after: int | None = None,
    ) -> Response:
        view = await request.app.state.gateway.get(
            session, f"/v1/sites/{site}/subjects/{subject}", read_after=read_after
        )
        screened = None
        forms: list[FormPage] = []
        may_post = may(session.role, Right.POST_SITE_FORMS) and session.site == site
        if view["screenings"]:
            screened = await request.app.state.gateway.get(
                session, f"/v1/sites/{site}/subjects/{subject}/forms/screening", read_after=read_after
            )
        waiting = awaiting(screened["data"] if screened else None)
        due = await request.app.state.gateway.get(session, f"/v1/sites/{site}/reconsent")
        reconsent = next((d["required_version"] for d in due if d["subject_id"] == subject), None)
        in_force = await self.in_force(request, session, site)
        for operation, extra in (
            due_forms(view, await self.casebook_forms(request, in_force), awaiting=waiting, reconsent=reconsent)
            if may_post
            else ()
        ):
            action = f"/sites/{site}/subjects/{subject}/forms/{operation}"
            wanted = posted is not None and posted.action == action and posted.extra.items() >= extra.items()
            shown = posted if posted is not None and wanted else None
            # A revised consent form is entered as the version it is.
            values = {"consent_form_version": reconsent} if operation == "record_consent" and reconsent else {}
            shown = shown or await self.form_page(request, session, operation, action, values, {}, under=in_force)
            shown.extra |= extra
            shown.fields = referring(shown.fields, subject_records(view))
            forms.append(shown)
        scheduled = [v["visit"] for v in view["visits"] if v["status"] == VisitStatus.SCHEDULED]
        judged_by = {i.answered_by for _, i in walk(self.protocol.forms.forms["screening"].items) if i.answered_by}
        lang = language(request)
        versions = [await self.protocol_version(request, session, v) for v in versions_of(view, screened)]
        judged_under = screened.get("protocol_version") if screened else None
        criteria = (await self.protocol_version(request, session, judged_under)) if judged_under else self.protocol
        return self.page(
            request, "casebook.html", session, status=status, site=site, subject=view, screened=screened, forms=forms,
            next=next_step(
                view["state"], arm=view["arm"], awaiting=waiting, surgery_done=view["surgery_date"] is not None,
                next_visit=scheduled[0] if scheduled else None, reconsent=reconsent,
            ),
            reconsent=reconsent, criteria=criteria.eligibility.criteria, judged_under=judged_under,
            side_by_side=side_by_side(versions, view, lang, self.form_title)
            if len(versions) > 1
            else None,
            awaiting=waiting, may_judge=may_post and any(may(session.role, right) for right in judged_by),
            may_post=may_post, may_answer=may(session.role, Right.ANSWER_QUERIES) and session.site == site,
            may_query=may(session.role, Right.OPEN_QUERIES), may_sign=may(session.role, Right.SIGN_CASEBOOKS),
            may_verify=may(session.role, Right.VERIFY_FORMS), may_lock=may(session.role, Right.LOCK_CASEBOOKS),
            query_targets=query_targets(
                self.protocol.forms, [f["form"] for f in view.get("forms", [])], language(request)
            ),
            key=str(uuid.uuid4()),
        )  # fmt: skip


def subject_records(view: dict[str, Any]) -> dict[str, dict[str, dict[str, str]]]:
    """The subject's records an item may name, by form: each adverse event by its term and onset (the site's own
    words, the same in either language)."""
    events = {
        str(ae["ae_id"]): {"en": f"{ae['term']} ({ae['onset_date']})", "zh": f"{ae['term']}（{ae['onset_date']}）"}
        for ae in view["adverse_events"]
    }
    return {"adverse-event": events}


def pages_of(request: Request) -> Pages:
    pages: Pages = request.app.state.pages
    return pages


PagesOf = Annotated[Pages, Depends(pages_of)]
