"""The gateway's public API, called with the signed-in person's token: this app is its reference site app, so
whatever it does a hospital's own app can do too. Its forms come from the gateway's OpenAPI document."""

from typing import Any

import httpx

from services.web.problems import PROBLEMS, said
from services.web.session import Session


class GatewayProblem(Exception):
    """A problem the gateway answered (RFC 9457): shown next to the fields it names."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(problem.get("detail") or problem.get("title") or str(status))
        self.status = status
        self.problem = problem

    @property
    def rules_by_field(self) -> dict[str, str]:
        """The rule each field breaks (`missing`, `greater_than_equal`, …, or the trial rule that names the field),
        by the form's field path."""
        found = {
            str(error.get("field", "")).removeprefix("body.").removeprefix("body"): str(error.get("rule", ""))
            for error in self.problem.get("errors") or ()
        }
        return found or {str(self.problem.get("field") or ""): str(self.problem.get("rule") or "")}

    @classmethod
    def of(cls, status: int, kind: str, detail: str) -> "GatewayProblem":
        """A problem this app finds itself, typed like the gateway's so a page words it the same way."""
        return cls(status, {"type": PROBLEMS + kind, "status": status, "detail": detail})

    def messages(self, language: str) -> dict[str, str]:
        """What to say by the form's field path (`weight_kg`, `serology.hiv`), the rest under "": each refused
        item's message (which the page words by its rule, `rules_by_field`), or the trial rule refused, in the
        page's language."""
        messages: dict[str, str] = {}
        for error in self.problem.get("errors") or ():
            field = str(error.get("field", "")).removeprefix("body.").removeprefix("body")
            messages.setdefault(field, str(error.get("message", "")))
        return messages or {str(self.problem.get("field") or ""): self.said(language)}

    def said(self, language: str) -> str:
        return said(self.problem, language)


class Gateway:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http
        self._openapi: dict[str, Any] | None = None

    async def get(self, session: Session, path: str, *, read_after: int | None = None, **params: Any) -> Any:
        """`read_after`: the `stream_sequence` of this person's last write, so the page shows it (read your writes)."""
        headers = {"Authorization": f"Bearer {session.access_token}"}
        if read_after is not None:
            headers["Read-After"] = str(read_after)
        return self._answer(await self._http.get(path, params=params, headers=headers))

    async def post(
        self, session: Session, path: str, body: dict[str, Any], *, key: str, if_match: str | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {session.access_token}", "Idempotency-Key": key}
        if if_match:
            headers["If-Match"] = if_match
        answer: dict[str, Any] = self._answer(await self._http.post(path, json=body, headers=headers))
        return answer

    async def upload(self, session: Session, path: str, content: bytes, media_type: str, *, key: str) -> dict[str, Any]:
        """A file posted as it is (a photograph), answered as a form is."""
        headers = {
            "Authorization": f"Bearer {session.access_token}",
            "Idempotency-Key": key,
            "Content-Type": media_type,
        }
        answer: dict[str, Any] = self._answer(await self._http.post(path, content=content, headers=headers))
        return answer

    async def sign_out(self, session: Session) -> None:
        """The gateway refuses this session's token from now on."""
        answer = await self._http.post("/v1/sign-out", headers={"Authorization": f"Bearer {session.access_token}"})
        if answer.status_code >= 400:
            self._answer(answer)

    async def file(self, session: Session, path: str) -> httpx.Response:
        """A report or export as the gateway serves it (its bytes and content type), for the browser to show."""
        answer = await self._http.get(path, headers={"Authorization": f"Bearer {session.access_token}"})
        if answer.status_code >= 400:
            self._answer(answer)
        return answer

    @staticmethod
    def _answer(answer: httpx.Response) -> Any:
        if answer.status_code >= 400:
            try:
                problem = answer.json()
            except ValueError:
                problem = {"detail": answer.text[:200]}
            raise GatewayProblem(answer.status_code, problem if isinstance(problem, dict) else {"detail": str(problem)})
        return answer.json()

    async def openapi(self, version: str | None = None) -> dict[str, Any]:
        """The gateway's document, read once, and again when it does not describe this version of the protocol
        yet (an amendment deployed since: the gateway's document follows it)."""
        known = (self._openapi or {}).get("x-protocol-versions", ())
        if self._openapi is None or (version is not None and version not in known):
            answer = await self._http.get("/openapi.json")
            answer.raise_for_status()
            self._openapi = answer.json()
        return self._openapi

    async def datasets(self) -> list[str]:
        """The datasets the gateway exports, by name, as its document lists them (every version's forms')."""
        document = await self.openapi()
        for item in document["paths"].values():
            export = item.get("get", {})
            if export.get("operationId") == "export_domain":
                [domain] = [p for p in export["parameters"] if p["name"] == "domain"]
                return list(domain["schema"]["enum"])
        raise KeyError("export_domain")

    async def request_schema(self, operation_id: str, version: str | None = None) -> dict[str, Any]:
        """The JSON schema of an operation's request body, `$ref`s resolved against the document's components: a
        collected form's as this version of the protocol declares it (`x-versions`)."""
        document = await self.openapi(version)
        for item in document["paths"].values():
            for operation in item.values():
                if isinstance(operation, dict) and operation.get("operationId") == operation_id:
                    by_version = operation.get("x-versions", {})
                    schema = (
                        by_version.get(version) or operation["requestBody"]["content"]["application/json"]["schema"]
                    )
                    resolved: dict[str, Any] = resolve(schema, document)
                    return resolved
        raise KeyError(operation_id)


def resolve(schema: Any, document: dict[str, Any]) -> Any:
    if isinstance(schema, dict):
        if "$ref" in schema:
            target: Any = document
            for part in schema["$ref"].lstrip("#/").split("/"):
                target = target[part]
            # What stands beside the reference (an item's words from the dictionary) is kept over the target's.
            beside = {k: resolve(v, document) for k, v in schema.items() if k != "$ref"}
            return {**resolve(target, document), **beside}
        return {k: resolve(v, document) for k, v in schema.items()}
    if isinstance(schema, list):
        return [resolve(v, document) for v in schema]
    return schema
