"""``python -m airflow_workflow_provider.testing.emulator``: serve the emulator until SIGINT / SIGTERM."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import tempfile
import threading

from airflow_workflow_provider.testing.emulator.datadog import DEFAULT_VOCABULARY as DEFAULT_DATADOG_VOCABULARY
from airflow_workflow_provider.testing.emulator.datadog import VOCABULARIES as DATADOG_VOCABULARIES
from airflow_workflow_provider.testing.emulator.server import WorkflowEmulator, is_loopback


def token_file_for(url_file: str | os.PathLike[str]) -> str:
    """Where the CLI writes the control token when it writes ``url_file``: beside it, readable by its owner only."""
    return f"{os.fspath(url_file)}.token"


def read_control_token(url_file: str | os.PathLike[str]) -> str:
    """The control token of the emulator that wrote ``url_file`` (for ``X-Emulator-Token``)."""
    with open(token_file_for(url_file)) as handle:
        return handle.read().strip()


def _write_atomically(path: str, text: str) -> None:
    """Readers poll for the URL file; a rename makes sure they never see it half written."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".emulator-url-")  # created 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_workflow_provider.testing.emulator",
        description="Offline emulator of the Datadog, Cloudflare and SailPoint workflow APIs.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default)")
    parser.add_argument(
        "--url-file", help="write the base URL to this file once listening, and the control token to FILE.token"
    )
    parser.add_argument(
        "--control-token",
        default=os.environ.get("EMULATOR_CONTROL_TOKEN"),
        help="the token the /_emulator/* control API requires (default: $EMULATOR_CONTROL_TOKEN, else a random one)",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    parser.add_argument(
        "--datadog-vocabulary",
        choices=sorted(DATADOG_VOCABULARIES),
        default=DEFAULT_DATADOG_VOCABULARY,
        help="the (undocumented) strings Datadog's success and failure take (default %(default)s)",
    )
    parser.add_argument(
        "--documented-limits",
        action="store_true",
        help="answer 429 past each vendor's documented rate limit, per credential, as the vendors do",
    )
    args = parser.parse_args(argv)
    if not is_loopback(args.host):
        parser.error(f"refusing to listen on non-loopback host {args.host!r}")
    log_format = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=args.log_level.upper(), format=log_format)

    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    emulator = WorkflowEmulator(host=args.host, port=args.port, control_token=args.control_token).start()
    emulator.set_datadog_vocabulary(args.datadog_vocabulary)
    if args.documented_limits:
        emulator.enforce_documented_limits()
    try:
        # The files first (the token before the URL that readers poll for): whoever sees the line may read them.
        if args.url_file:
            _write_atomically(token_file_for(args.url_file), emulator.control_token)
            _write_atomically(args.url_file, emulator.url)
        print(f"workflow emulator listening on {emulator.url}", flush=True)
        # A timeout keeps the main thread returning to the interpreter so signal handlers run promptly.
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
        if args.url_file:
            # A stale URL file would point the next reader at a dead port.
            for path in (args.url_file, token_file_for(args.url_file)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
    return 0
