"""`python -m services.web`: the web app for site staff, monitors, the safety team and data managers."""

import signal
import sys

import uvicorn

from services.web.app import create_app
from services.web.settings import WebSettings
from shared.runtime.logging import configure_logging
from shared.runtime.settings import load_settings


def main() -> int:
    settings = load_settings(WebSettings)
    configure_logging(settings.log_level, settings.log_format, service="web")
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    try:
        app = create_app(settings)
    except ValueError as exc:
        print(f"web: refusing to start: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=settings.web_host, port=settings.web_port, loop="uvloop", log_config=None, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
