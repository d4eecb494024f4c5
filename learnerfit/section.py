"""The base of every settings section (`learner`, `oracle`, `train`, ...): a typo in a file or variable is an
error that names it, never a setting silently ignored."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)
