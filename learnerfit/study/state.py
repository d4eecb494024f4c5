"""A study's progress, kept in its output folder (study.json) so an interrupted study resumes where it stopped.

Each phase records its result when it finishes, written to a side file and moved into
place: a study killed mid-phase finds the phase not done and runs it again, never a
half-written record. Training records each policy's checkpoint as it is registered.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from learnerfit.errors import FailedPrecondition

PHASES = ("curate", "select", "train", "report")


class StudyState:
    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / "study.json"
        self.data: dict[str, Any] = json.loads(self.path.read_text()) if self.path.exists() else {}

    def done(self, phase: str) -> bool:
        return phase in self.data.get("phases", {})

    def finish(self, phase: str, result: dict[str, Any]) -> None:
        self.data.setdefault("phases", {})[phase] = result
        self.save()

    def result(self, phase: str) -> dict[str, Any]:
        return self.data.get("phases", {}).get(phase, {})

    def check_same_study(self, settings: dict[str, Any]) -> None:
        """A folder holds one study: resuming with other settings would mix two (refused, naming what differs)."""
        recorded = self.data.get("settings")
        if recorded is None:
            self.data["settings"] = settings
            self.save()
            return
        differ = sorted(k for k in set(recorded) | set(settings) if recorded.get(k) != settings.get(k))
        if differ:
            raise FailedPrecondition(f"{self.folder} holds a study with other settings ({', '.join(differ)} differ); "
                             "use another --out, or the same options to resume it")

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps(self.data, indent=2, sort_keys=True))
        partial.replace(self.path)
