"""The emulator in a process of its own, seeded in-process with finished executions (``create_executions``).

``python -m benchmarks.seeded_emulator --url-file PATH --seed VENDOR:WORKFLOW:COUNT [--seed ...]``; runs until
SIGTERM. The control API has no seeding endpoint, and seeding 10,000 executions through the start endpoints
would only cost time.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from airflow_workflow_provider.testing.emulator import WorkflowEmulator
from airflow_workflow_provider.testing.emulator.cli import token_file_for


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.seeded_emulator")
    parser.add_argument("--url-file", required=True)
    parser.add_argument("--seed", action="append", default=[], help="VENDOR:WORKFLOW:COUNT")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with WorkflowEmulator() as emulator:
        for seed in args.seed:
            vendor, workflow, count = seed.split(":")
            emulator.create_executions(vendor, workflow, int(count), finished=True)
        # The control token first, where read_control_token looks for it, then the URL that readers poll for.
        for path, text in ((token_file_for(args.url_file), emulator.control_token), (args.url_file, emulator.url)):
            temporary = path + ".tmp"
            with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
                handle.write(text)
            os.replace(temporary, path)
        while not stop.wait(0.5):
            pass
    os.unlink(args.url_file)
    os.unlink(token_file_for(args.url_file))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
