"""Settings of the refiner service (the Oracle)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from services.backends.settings import ModelSettings
from services.common import topics
from services.common.settings import StageSettings


class OracleSettings(StageSettings, ModelSettings):
    """What both Oracle services share. `model`/`backend` name the Oracle (local default: SmolLM2)."""

    oracle_temperature: float = Field(0.0, ge=0, le=2, description="Oracle sampling temperature (0: greedy).")
    oracle_max_new_tokens: int = Field(192, ge=8, le=8192, description="Longest Oracle output, in tokens.")
    oracle_seed: int = Field(0, description="Oracle sampling seed.")
    min_overlap: float = Field(0.5, ge=0, le=1, description="rewrite/repair: least share of the learner's words "
                                                             "an output must keep.")
    check_timeout_s: int = Field(5, ge=1, le=120, description="Time limit of one answer check.")
    max_trajectories_per_request: int = Field(256, ge=1, description="Most trajectories in one gRPC request.")
    scored_topic: str = Field(topics.SCORED, description="Topic the scored learner samples are read from.")
    trajectories_topic: str = Field(topics.TRAJECTORIES, description="Topic accepted outputs go to (to be scored).")
    rejected_topic: str = Field(topics.ORACLE_REJECTED, description="Topic rejected outputs go to, with the reason.")
    max_batch: int = Field(8, ge=1, le=1024, description="Most input trajectories per Oracle call.")


class RefinerSettings(OracleSettings):
    """Refiner: Oracle-refined (minimal repair of learner traces) and Oracle-synthesized (from scratch) traces, for
    the batches that ask for them."""

    service_name: ClassVar[str] = "refiner"
