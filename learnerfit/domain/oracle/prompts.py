"""Oracle prompt templates: versioned files under learnerfit/domain/oracle/prompts/, named `<name>.v<N>.txt`.

A file has `#` comment lines, then a `[system]` and a `[user]` section; `{field}`
placeholders are filled with str.format. Every Oracle output records the template's
id (e.g. `rewrite.v1`) in its metadata; `learnerfit prompts show` prints them.
A new wording is a new file with the next version, so old outputs stay explained.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PROMPT_DIR = Path(__file__).resolve().parent / "prompts"
_FILE = re.compile(r"^(?P<name>[a-z_]+)\.v(?P<version>\d+)\.txt$")


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    version: int
    system: str
    user: str
    path: Path

    @property
    def id(self) -> str:
        return f"{self.name}.v{self.version}"

    @property
    def fields(self) -> set[str]:
        return {f for part in (self.system, self.user) for _, f, _, _ in string.Formatter().parse(part) if f}

    def render(self, **values: str) -> list[dict[str, str]]:
        missing = self.fields - values.keys()
        if missing:
            raise KeyError(f"prompt {self.id} needs {', '.join(sorted(missing))}")
        return [{"role": "system", "content": self.system.format(**values)},
                {"role": "user", "content": self.user.format(**values)}]


def parse_template(path: Path) -> PromptTemplate:
    match = _FILE.match(path.name)
    if not match:
        raise ValueError(f"{path}: prompt files are named <name>.v<N>.txt")
    sections: dict[str, list[str]] = {}
    current = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") and current is None:
            continue
        if line.strip() in ("[system]", "[user]"):
            current = line.strip()[1:-1]
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    if set(sections) != {"system", "user"}:
        raise ValueError(f"{path}: needs a [system] and a [user] section")
    return PromptTemplate(match["name"], int(match["version"]), "\n".join(sections["system"]).strip(),
                          "\n".join(sections["user"]).strip(), path)


@cache
def all_templates(directory: Path = PROMPT_DIR) -> dict[str, PromptTemplate]:
    """Every template by id."""
    templates = [parse_template(p) for p in sorted(directory.glob("*.txt"))]
    return {t.id: t for t in templates}


def template(name: str, version: int | None = None) -> PromptTemplate:
    """A template by name: the given version, or the newest."""
    versions = [t for t in all_templates().values() if t.name == name]
    if version is not None:
        versions = [t for t in versions if t.version == version]
    if not versions:
        known = sorted({t.name for t in all_templates().values()})
        raise KeyError(f"no prompt template {name!r}{f' v{version}' if version else ''}; known: {', '.join(known)}")
    return max(versions, key=lambda t: t.version)
