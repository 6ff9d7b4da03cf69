"""`python -m devstack.watchdog PGDATA`: stops the PostgreSQL server of PGDATA once the process that started this
watchdog ends, however it ends: Linux sends the watchdog SIGTERM then (the parent-death signal). pg_ctl makes the
server a daemon of its own, so no signal to its starter's children would reach it otherwise."""

import os
import signal
import sys
from pathlib import Path


def stop_server(data_dir: Path) -> None:
    """A fast shutdown (SIGINT to the postmaster): open transactions roll back, the data stays consistent."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGINT)
    except (OSError, ValueError, IndexError):
        pass  # not running


def main() -> int:
    data_dir = Path(sys.argv[1])
    ending = {signal.SIGTERM, signal.SIGHUP, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, ending)
    signal.sigwait(ending)
    stop_server(data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
