"""One running system for all end-to-end tests: every service as its own process, a database of its own."""

import asyncio
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import yaml
from cryptography.fernet import Fernet
from playwright.async_api import Browser, async_playwright

from devstack.identity import (
    GATEWAY_AUDIENCE,
    REDIRECT_URI,
    IdentityProvider,
    development_accounts,
    web_app_env,
    web_callback,
)
from devstack.servers import OWNER_ROLE, create_database, database_urls, env_with, free_port
from devstack.stack import ServiceProcesses
from shared.contracts.protocol import load_protocol, protocol_document
from shared.runtime.postgres import create_pool
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE
from tests.conftest import COMMAND_KEYS, Servers, database_url_for
from tests.e2e.api import KEYS, LEAVER, REAUTHENTICATION_SECONDS, TEST_SEED, System
from tests.questionnaire import with_questionnaire

DATA = Path(__file__).parent.parent / "data"

# Beside the protocol's own sites (UTC+8), two at the far ends of the day: there the site's date differs from
# the UTC date most hours, so a date taken from UTC instead of the site's zone fails the tests most of the day.
FAR_SITES = (
    {
        "code": "KIR",
        "name": "Test site, Kiritimati (UTC+14)",
        "status": "active",
        "time_zone": "Pacific/Kiritimati",
        "country": "KIR",
    },
    {
        "code": "PPG",
        "name": "Test site, Pago Pago (UTC-11)",
        "status": "active",
        "time_zone": "Pacific/Pago_Pago",
        "country": "ASM",
    },
    {"code": "XSP", "name": "Test site, suspended", "status": "suspended", "time_zone": "UTC", "country": "CHN"},
)


@pytest.fixture(scope="session")
def system_protocol_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trial's protocol with far sites, a short re-authentication window, a questionnaire added to its data
    dictionary (`tests/questionnaire.py`: the system runs a form no code names), and room for every test's subjects:
    the whole suite shares one system, and the cap of 40 is the randomization tests' own (`tests/integration`)."""
    folder = tmp_path_factory.mktemp("protocol")
    definition = with_questionnaire(protocol_document(DEFAULT_PROTOCOL_FILE), folder)
    definition["sites"] += FAR_SITES
    definition["signatures"]["reauthentication_seconds"] = REAUTHENTICATION_SECONDS
    definition["enrollment_cap"] = 400
    path = folder / "e2e.yaml"
    path.write_text(yaml.safe_dump(definition, allow_unicode=True))
    return path


@pytest.fixture(scope="session")
def web_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def identity_provider(
    system_protocol_file: Path, web_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real OpenID Connect provider with a person per role at each site, the gateway's production issuer; the
    web app is one of its clients."""
    accounts = (*development_accounts(load_protocol(system_protocol_file)), LEAVER)
    provider = IdentityProvider(
        tmp_path_factory.mktemp("identity"), accounts, redirect_uris=(REDIRECT_URI, web_callback(web_port))
    )
    try:
        yield provider.start()
    finally:
        provider.stop()


@pytest.fixture(scope="session")
def system(
    servers: Servers,
    system_protocol_file: Path,
    identity_provider: str,
    web_port: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[System]:
    name = f"e2e_{uuid.uuid4().hex[:10]}"
    asyncio.run(create_database(servers.admin_database_url, name, owner=OWNER_ROLE))
    database_url = database_url_for(servers.admin_database_url, name)
    port = free_port()
    env = env_with(
        NATS_URL=servers.nats_url,
        DATABASE_URL=database_url,
        GATEWAY_PORT=str(port),
        TOKEN_SIGNING_KEYS=KEYS,
        OIDC_ISSUER=identity_provider,
        OIDC_AUDIENCE=GATEWAY_AUDIENCE,
        COMMAND_TIMEOUT_SECONDS="3",
        CONSUMER_CHECK_SECONDS="2",
        RANDOMIZATION_SEED=TEST_SEED,
        PROTOCOL_FILE=str(system_protocol_file),
        # The sponsor's dictionaries, small local ones (MedDRA and WHODrug are licensed).
        AE_DICTIONARY_FILE=str(DATA / "ae-dictionary.csv"),
        DRUG_DICTIONARY_FILE=str(DATA / "drug-dictionary.csv"),
        **COMMAND_KEYS,
        **web_app_env(web_port=web_port, gateway_url=f"http://127.0.0.1:{port}"),
        WEB_SESSION_KEY=Fernet.generate_key().decode(),
    )
    roles = database_urls(database_url)
    owner = env | {"DATABASE_URL": roles["migrate"]}
    for step in (["ops.provision"], ["services.reporting", "migrate"], ["services.gateway", "migrate"]):
        subprocess.run([sys.executable, "-m", *step], env=owner, check=True, capture_output=True)
    # Every service connects as its own least-privilege user: what is tested is what runs.
    processes = ServiceProcesses(
        env, log_dir=tmp_path_factory.mktemp("e2e-logs"), nats_urls=servers.nats_urls, database_urls=roles
    )
    processes.start()
    url = f"http://127.0.0.1:{port}"
    try:
        processes.wait_ready(url)
        processes.start("web", ready_within=60)
        yield System(
            processes,
            url,
            database_url,
            load_protocol(system_protocol_file),
            identity_provider,
            f"http://127.0.0.1:{web_port}",
        )
    finally:
        processes.stop()


@pytest.fixture
async def client(system: System) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=system.url, timeout=15) as http:
        yield http


@pytest.fixture
async def read_pool(system: System) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(system.database_url, max_size=2)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def system_openapi(system: System) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(f"{system.url}/openapi.json", timeout=10).json()
    return document


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is installed by `make test` (apt-get install -y chromium)"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()
