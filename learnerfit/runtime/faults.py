"""Pause points: where a fault trial makes its moment happen instead of polling for it.

A process started with LEARNERFIT_PAUSE_AT=<point> and LEARNERFIT_PAUSE_DIR=<folder> stops at that point: it writes
`<folder>/<point>` (the harness waits for the file) and sleeps until it is killed. So "killed after the registry
recorded a decision and before it announced it" is a state the trial reaches every time, however busy the machine.
Unset (always, outside the fault trials), a pause point is one environment lookup."""

from __future__ import annotations

import os
import time
from pathlib import Path

PAUSE_AT, PAUSE_DIR = "LEARNERFIT_PAUSE_AT", "LEARNERFIT_PAUSE_DIR"


def pause_point(name: str) -> None:
    if os.environ.get(PAUSE_AT) != name:
        return
    folder = Path(os.environ.get(PAUSE_DIR, "."))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(f"{os.getpid()}\n")
    while True:  # held here until the harness kills the process
        time.sleep(3600)
