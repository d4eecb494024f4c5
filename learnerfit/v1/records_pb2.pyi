import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from learnerfit.v1 import bus_pb2 as _bus_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Origin(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORIGIN_UNSPECIFIED: _ClassVar[Origin]
    ORIGIN_LEARNER_SAMPLE: _ClassVar[Origin]
    ORIGIN_ORACLE_REFINED: _ClassVar[Origin]
    ORIGIN_ORACLE_SYNTHESIZED: _ClassVar[Origin]
    ORIGIN_STYLE_ALIGNED: _ClassVar[Origin]
    ORIGIN_REFERENCE: _ClassVar[Origin]

class UsageSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    USAGE_SOURCE_UNSPECIFIED: _ClassVar[UsageSource]
    USAGE_SOURCE_REPORTED: _ClassVar[UsageSource]
    USAGE_SOURCE_COUNTED: _ClassVar[UsageSource]
    USAGE_SOURCE_ESTIMATED: _ClassVar[UsageSource]
    USAGE_SOURCE_NONE: _ClassVar[UsageSource]

class OracleMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORACLE_MODE_UNSPECIFIED: _ClassVar[OracleMode]
    ORACLE_MODE_REFINE: _ClassVar[OracleMode]
    ORACLE_MODE_SYNTHESIZE: _ClassVar[OracleMode]
    ORACLE_MODE_REWRITE: _ClassVar[OracleMode]
    ORACLE_MODE_REPAIR: _ClassVar[OracleMode]

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    VERDICT_CORRECT: _ClassVar[Verdict]
    VERDICT_INCORRECT: _ClassVar[Verdict]
    VERDICT_UNPARSED: _ClassVar[Verdict]
    VERDICT_CHECK_FAILED: _ClassVar[Verdict]

class CheckpointKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHECKPOINT_KIND_UNSPECIFIED: _ClassVar[CheckpointKind]
    CHECKPOINT_KIND_ADAPTER: _ClassVar[CheckpointKind]
    CHECKPOINT_KIND_FULL: _ClassVar[CheckpointKind]

class PromotionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROMOTION_STATE_UNSPECIFIED: _ClassVar[PromotionState]
    PROMOTION_STATE_PENDING: _ClassVar[PromotionState]
    PROMOTION_STATE_PROMOTED: _ClassVar[PromotionState]
    PROMOTION_STATE_NOT_PROMOTED: _ClassVar[PromotionState]
    PROMOTION_STATE_ROLLED_BACK: _ClassVar[PromotionState]

class BatchState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BATCH_STATE_UNSPECIFIED: _ClassVar[BatchState]
    BATCH_STATE_RUNNING: _ClassVar[BatchState]
    BATCH_STATE_COMPLETE: _ClassVar[BatchState]
ORIGIN_UNSPECIFIED: Origin
ORIGIN_LEARNER_SAMPLE: Origin
ORIGIN_ORACLE_REFINED: Origin
ORIGIN_ORACLE_SYNTHESIZED: Origin
ORIGIN_STYLE_ALIGNED: Origin
ORIGIN_REFERENCE: Origin
USAGE_SOURCE_UNSPECIFIED: UsageSource
USAGE_SOURCE_REPORTED: UsageSource
USAGE_SOURCE_COUNTED: UsageSource
USAGE_SOURCE_ESTIMATED: UsageSource
USAGE_SOURCE_NONE: UsageSource
ORACLE_MODE_UNSPECIFIED: OracleMode
ORACLE_MODE_REFINE: OracleMode
ORACLE_MODE_SYNTHESIZE: OracleMode
ORACLE_MODE_REWRITE: OracleMode
ORACLE_MODE_REPAIR: OracleMode
VERDICT_UNSPECIFIED: Verdict
VERDICT_CORRECT: Verdict
VERDICT_INCORRECT: Verdict
VERDICT_UNPARSED: Verdict
VERDICT_CHECK_FAILED: Verdict
CHECKPOINT_KIND_UNSPECIFIED: CheckpointKind
CHECKPOINT_KIND_ADAPTER: CheckpointKind
CHECKPOINT_KIND_FULL: CheckpointKind
PROMOTION_STATE_UNSPECIFIED: PromotionState
PROMOTION_STATE_PENDING: PromotionState
PROMOTION_STATE_PROMOTED: PromotionState
PROMOTION_STATE_NOT_PROMOTED: PromotionState
PROMOTION_STATE_ROLLED_BACK: PromotionState
BATCH_STATE_UNSPECIFIED: BatchState
BATCH_STATE_RUNNING: BatchState
BATCH_STATE_COMPLETE: BatchState

class SamplingSpec(_message.Message):
    __slots__ = ("samples_per_problem", "temperature", "top_p", "max_new_tokens", "seed")
    SAMPLES_PER_PROBLEM_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    MAX_NEW_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    samples_per_problem: int
    temperature: float
    top_p: float
    max_new_tokens: int
    seed: int
    def __init__(self, samples_per_problem: _Optional[int] = ..., temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., max_new_tokens: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class Problem(_message.Message):
    __slots__ = ("id", "batch_id", "question", "reference_answer", "source", "sampling", "curation_policy", "oracle_modes", "reference_solution", "batch_problems", "oracle_budget")
    ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_ANSWER_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    CURATION_POLICY_FIELD_NUMBER: _ClassVar[int]
    ORACLE_MODES_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_SOLUTION_FIELD_NUMBER: _ClassVar[int]
    BATCH_PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    ORACLE_BUDGET_FIELD_NUMBER: _ClassVar[int]
    id: str
    batch_id: str
    question: str
    reference_answer: str
    source: str
    sampling: SamplingSpec
    curation_policy: str
    oracle_modes: _containers.RepeatedScalarFieldContainer[OracleMode]
    reference_solution: str
    batch_problems: int
    oracle_budget: OracleBudget
    def __init__(self, id: _Optional[str] = ..., batch_id: _Optional[str] = ..., question: _Optional[str] = ..., reference_answer: _Optional[str] = ..., source: _Optional[str] = ..., sampling: _Optional[_Union[SamplingSpec, _Mapping]] = ..., curation_policy: _Optional[str] = ..., oracle_modes: _Optional[_Iterable[_Union[OracleMode, str]]] = ..., reference_solution: _Optional[str] = ..., batch_problems: _Optional[int] = ..., oracle_budget: _Optional[_Union[OracleBudget, _Mapping]] = ...) -> None: ...

class OracleBudget(_message.Message):
    __slots__ = ("max_cost_usd", "max_tokens")
    MAX_COST_USD_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    max_cost_usd: float
    max_tokens: int
    def __init__(self, max_cost_usd: _Optional[float] = ..., max_tokens: _Optional[int] = ...) -> None: ...

class OracleUsage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens", "cached_tokens", "source", "cost_usd", "requests")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    source: UsageSource
    cost_usd: float
    requests: int
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., cached_tokens: _Optional[int] = ..., source: _Optional[_Union[UsageSource, str]] = ..., cost_usd: _Optional[float] = ..., requests: _Optional[int] = ...) -> None: ...

class TokenLoss(_message.Message):
    __slots__ = ("token", "total_loss", "count")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_LOSS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    token: str
    total_loss: float
    count: int
    def __init__(self, token: _Optional[str] = ..., total_loss: _Optional[float] = ..., count: _Optional[int] = ...) -> None: ...

class Scores(_message.Message):
    __slots__ = ("verdict", "verdict_detail", "reward", "reward_model", "ppl", "segment_ppl", "top_loss_tokens", "token_count", "drift_checkpoint", "mean_token_rank", "rsr", "step_accuracy", "steps_checked")
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    VERDICT_DETAIL_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    REWARD_MODEL_FIELD_NUMBER: _ClassVar[int]
    PPL_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_PPL_FIELD_NUMBER: _ClassVar[int]
    TOP_LOSS_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    DRIFT_CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    MEAN_TOKEN_RANK_FIELD_NUMBER: _ClassVar[int]
    RSR_FIELD_NUMBER: _ClassVar[int]
    STEP_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    STEPS_CHECKED_FIELD_NUMBER: _ClassVar[int]
    verdict: Verdict
    verdict_detail: str
    reward: float
    reward_model: str
    ppl: float
    segment_ppl: _containers.RepeatedScalarFieldContainer[float]
    top_loss_tokens: _containers.RepeatedCompositeFieldContainer[TokenLoss]
    token_count: int
    drift_checkpoint: str
    mean_token_rank: float
    rsr: float
    step_accuracy: float
    steps_checked: int
    def __init__(self, verdict: _Optional[_Union[Verdict, str]] = ..., verdict_detail: _Optional[str] = ..., reward: _Optional[float] = ..., reward_model: _Optional[str] = ..., ppl: _Optional[float] = ..., segment_ppl: _Optional[_Iterable[float]] = ..., top_loss_tokens: _Optional[_Iterable[_Union[TokenLoss, _Mapping]]] = ..., token_count: _Optional[int] = ..., drift_checkpoint: _Optional[str] = ..., mean_token_rank: _Optional[float] = ..., rsr: _Optional[float] = ..., step_accuracy: _Optional[float] = ..., steps_checked: _Optional[int] = ...) -> None: ...

class Trajectory(_message.Message):
    __slots__ = ("id", "problem", "origin", "parent_id", "model", "checkpoint", "text", "steps", "final_answer", "scores", "sample_index", "completion_tokens", "truncated", "metadata", "style", "oracle_mode", "prompt_ids", "rejection", "oracle_usage")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    FINAL_ANSWER_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_INDEX_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    STYLE_FIELD_NUMBER: _ClassVar[int]
    ORACLE_MODE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_IDS_FIELD_NUMBER: _ClassVar[int]
    REJECTION_FIELD_NUMBER: _ClassVar[int]
    ORACLE_USAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    problem: Problem
    origin: Origin
    parent_id: str
    model: str
    checkpoint: str
    text: str
    steps: _containers.RepeatedScalarFieldContainer[str]
    final_answer: str
    scores: Scores
    sample_index: int
    completion_tokens: int
    truncated: bool
    metadata: _containers.ScalarMap[str, str]
    style: StyleMeasures
    oracle_mode: OracleMode
    prompt_ids: _containers.RepeatedScalarFieldContainer[str]
    rejection: Rejection
    oracle_usage: OracleUsage
    def __init__(self, id: _Optional[str] = ..., problem: _Optional[_Union[Problem, _Mapping]] = ..., origin: _Optional[_Union[Origin, str]] = ..., parent_id: _Optional[str] = ..., model: _Optional[str] = ..., checkpoint: _Optional[str] = ..., text: _Optional[str] = ..., steps: _Optional[_Iterable[str]] = ..., final_answer: _Optional[str] = ..., scores: _Optional[_Union[Scores, _Mapping]] = ..., sample_index: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., truncated: _Optional[bool] = ..., metadata: _Optional[_Mapping[str, str]] = ..., style: _Optional[_Union[StyleMeasures, _Mapping]] = ..., oracle_mode: _Optional[_Union[OracleMode, str]] = ..., prompt_ids: _Optional[_Iterable[str]] = ..., rejection: _Optional[_Union[Rejection, _Mapping]] = ..., oracle_usage: _Optional[_Union[OracleUsage, _Mapping]] = ...) -> None: ...

class StyleMeasures(_message.Message):
    __slots__ = ("latex_density", "mean_step_words", "steps", "overlap_with_parent")
    LATEX_DENSITY_FIELD_NUMBER: _ClassVar[int]
    MEAN_STEP_WORDS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_WITH_PARENT_FIELD_NUMBER: _ClassVar[int]
    latex_density: float
    mean_step_words: float
    steps: int
    overlap_with_parent: float
    def __init__(self, latex_density: _Optional[float] = ..., mean_step_words: _Optional[float] = ..., steps: _Optional[int] = ..., overlap_with_parent: _Optional[float] = ...) -> None: ...

class Rejection(_message.Message):
    __slots__ = ("guardrail", "detail")
    GUARDRAIL_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    guardrail: str
    detail: str
    def __init__(self, guardrail: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class ChatMessage(_message.Message):
    __slots__ = ("role", "content")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    role: str
    content: str
    def __init__(self, role: _Optional[str] = ..., content: _Optional[str] = ...) -> None: ...

class CuratedExample(_message.Message):
    __slots__ = ("id", "trajectory_id", "problem_id", "batch_id", "origin", "messages", "scores", "policy", "reason", "model", "checkpoint", "utility")
    ID_FIELD_NUMBER: _ClassVar[int]
    TRAJECTORY_ID_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    UTILITY_FIELD_NUMBER: _ClassVar[int]
    id: str
    trajectory_id: str
    problem_id: str
    batch_id: str
    origin: Origin
    messages: _containers.RepeatedCompositeFieldContainer[ChatMessage]
    scores: Scores
    policy: str
    reason: str
    model: str
    checkpoint: str
    utility: float
    def __init__(self, id: _Optional[str] = ..., trajectory_id: _Optional[str] = ..., problem_id: _Optional[str] = ..., batch_id: _Optional[str] = ..., origin: _Optional[_Union[Origin, str]] = ..., messages: _Optional[_Iterable[_Union[ChatMessage, _Mapping]]] = ..., scores: _Optional[_Union[Scores, _Mapping]] = ..., policy: _Optional[str] = ..., reason: _Optional[str] = ..., model: _Optional[str] = ..., checkpoint: _Optional[str] = ..., utility: _Optional[float] = ...) -> None: ...

class CurationDecision(_message.Message):
    __slots__ = ("id", "problem_id", "batch_id", "policy", "candidates", "correct_candidates", "curated", "chosen_trajectory_id", "reason", "timed_out")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    CORRECT_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    CURATED_FIELD_NUMBER: _ClassVar[int]
    CHOSEN_TRAJECTORY_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TIMED_OUT_FIELD_NUMBER: _ClassVar[int]
    id: str
    problem_id: str
    batch_id: str
    policy: str
    candidates: int
    correct_candidates: int
    curated: bool
    chosen_trajectory_id: str
    reason: str
    timed_out: bool
    def __init__(self, id: _Optional[str] = ..., problem_id: _Optional[str] = ..., batch_id: _Optional[str] = ..., policy: _Optional[str] = ..., candidates: _Optional[int] = ..., correct_candidates: _Optional[int] = ..., curated: _Optional[bool] = ..., chosen_trajectory_id: _Optional[str] = ..., reason: _Optional[str] = ..., timed_out: _Optional[bool] = ...) -> None: ...

class Checkpoint(_message.Message):
    __slots__ = ("version", "base_model", "kind", "path", "example_ids", "policy", "eval", "created_at", "uri", "training", "promotion")
    class EvalEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_IDS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    EVAL_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    TRAINING_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_FIELD_NUMBER: _ClassVar[int]
    version: str
    base_model: str
    kind: CheckpointKind
    path: str
    example_ids: _containers.RepeatedScalarFieldContainer[str]
    policy: str
    eval: _containers.ScalarMap[str, float]
    created_at: _timestamp_pb2.Timestamp
    uri: str
    training: TrainingRecipe
    promotion: Promotion
    def __init__(self, version: _Optional[str] = ..., base_model: _Optional[str] = ..., kind: _Optional[_Union[CheckpointKind, str]] = ..., path: _Optional[str] = ..., example_ids: _Optional[_Iterable[str]] = ..., policy: _Optional[str] = ..., eval: _Optional[_Mapping[str, float]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., uri: _Optional[str] = ..., training: _Optional[_Union[TrainingRecipe, _Mapping]] = ..., promotion: _Optional[_Union[Promotion, _Mapping]] = ...) -> None: ...

class Promotion(_message.Message):
    __slots__ = ("state", "reason", "decided_by", "compared_with", "accuracy", "compared_accuracy", "difference_low", "confidence", "samples", "sequence", "decided_at")
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BY_FIELD_NUMBER: _ClassVar[int]
    COMPARED_WITH_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    COMPARED_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCE_LOW_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    state: PromotionState
    reason: str
    decided_by: str
    compared_with: str
    accuracy: float
    compared_accuracy: float
    difference_low: float
    confidence: float
    samples: int
    sequence: int
    decided_at: _timestamp_pb2.Timestamp
    def __init__(self, state: _Optional[_Union[PromotionState, str]] = ..., reason: _Optional[str] = ..., decided_by: _Optional[str] = ..., compared_with: _Optional[str] = ..., accuracy: _Optional[float] = ..., compared_accuracy: _Optional[float] = ..., difference_low: _Optional[float] = ..., confidence: _Optional[float] = ..., samples: _Optional[int] = ..., sequence: _Optional[int] = ..., decided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TrainingRecipe(_message.Message):
    __slots__ = ("start_from", "seed", "epochs", "max_steps", "learning_rate", "steps", "replayed")
    START_FROM_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    start_from: str
    seed: int
    epochs: float
    max_steps: int
    learning_rate: float
    steps: int
    replayed: int
    def __init__(self, start_from: _Optional[str] = ..., seed: _Optional[int] = ..., epochs: _Optional[float] = ..., max_steps: _Optional[int] = ..., learning_rate: _Optional[float] = ..., steps: _Optional[int] = ..., replayed: _Optional[int] = ...) -> None: ...

class BatchStatus(_message.Message):
    __slots__ = ("batch_id", "state", "problems", "samples_expected", "samples_scored", "samples_correct", "samples_unparsed", "problems_decided", "curated", "curation_policy", "submitted_at", "updated_at", "samples_generated", "summaries", "oracle_expected", "oracle_scored", "oracle_rejected", "oracle_rejections", "problems_failed", "failures", "oracle_spend", "oracle_budget_exhausted", "oracle_budget")
    class OracleRejectionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_EXPECTED_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_SCORED_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_CORRECT_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_UNPARSED_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_DECIDED_FIELD_NUMBER: _ClassVar[int]
    CURATED_FIELD_NUMBER: _ClassVar[int]
    CURATION_POLICY_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_GENERATED_FIELD_NUMBER: _ClassVar[int]
    SUMMARIES_FIELD_NUMBER: _ClassVar[int]
    ORACLE_EXPECTED_FIELD_NUMBER: _ClassVar[int]
    ORACLE_SCORED_FIELD_NUMBER: _ClassVar[int]
    ORACLE_REJECTED_FIELD_NUMBER: _ClassVar[int]
    ORACLE_REJECTIONS_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FAILED_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    ORACLE_SPEND_FIELD_NUMBER: _ClassVar[int]
    ORACLE_BUDGET_EXHAUSTED_FIELD_NUMBER: _ClassVar[int]
    ORACLE_BUDGET_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    state: BatchState
    problems: int
    samples_expected: int
    samples_scored: int
    samples_correct: int
    samples_unparsed: int
    problems_decided: int
    curated: int
    curation_policy: str
    submitted_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    samples_generated: int
    summaries: _containers.RepeatedCompositeFieldContainer[ScoreSummary]
    oracle_expected: int
    oracle_scored: int
    oracle_rejected: int
    oracle_rejections: _containers.ScalarMap[str, int]
    problems_failed: int
    failures: _containers.RepeatedCompositeFieldContainer[ProblemFailure]
    oracle_spend: _containers.RepeatedCompositeFieldContainer[OracleSpend]
    oracle_budget_exhausted: bool
    oracle_budget: OracleBudget
    def __init__(self, batch_id: _Optional[str] = ..., state: _Optional[_Union[BatchState, str]] = ..., problems: _Optional[int] = ..., samples_expected: _Optional[int] = ..., samples_scored: _Optional[int] = ..., samples_correct: _Optional[int] = ..., samples_unparsed: _Optional[int] = ..., problems_decided: _Optional[int] = ..., curated: _Optional[int] = ..., curation_policy: _Optional[str] = ..., submitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., samples_generated: _Optional[int] = ..., summaries: _Optional[_Iterable[_Union[ScoreSummary, _Mapping]]] = ..., oracle_expected: _Optional[int] = ..., oracle_scored: _Optional[int] = ..., oracle_rejected: _Optional[int] = ..., oracle_rejections: _Optional[_Mapping[str, int]] = ..., problems_failed: _Optional[int] = ..., failures: _Optional[_Iterable[_Union[ProblemFailure, _Mapping]]] = ..., oracle_spend: _Optional[_Iterable[_Union[OracleSpend, _Mapping]]] = ..., oracle_budget_exhausted: _Optional[bool] = ..., oracle_budget: _Optional[_Union[OracleBudget, _Mapping]] = ...) -> None: ...

class OracleSpend(_message.Message):
    __slots__ = ("origin", "oracle_mode", "model", "outputs", "rejected", "curated", "prompt_tokens", "completion_tokens", "cached_tokens", "cost_usd", "rejected_cost_usd", "counted", "refused")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    ORACLE_MODE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    CURATED_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    REJECTED_COST_USD_FIELD_NUMBER: _ClassVar[int]
    COUNTED_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    origin: Origin
    oracle_mode: OracleMode
    model: str
    outputs: int
    rejected: int
    curated: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost_usd: float
    rejected_cost_usd: float
    counted: int
    refused: int
    def __init__(self, origin: _Optional[_Union[Origin, str]] = ..., oracle_mode: _Optional[_Union[OracleMode, str]] = ..., model: _Optional[str] = ..., outputs: _Optional[int] = ..., rejected: _Optional[int] = ..., curated: _Optional[int] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., cached_tokens: _Optional[int] = ..., cost_usd: _Optional[float] = ..., rejected_cost_usd: _Optional[float] = ..., counted: _Optional[int] = ..., refused: _Optional[int] = ...) -> None: ...

class ProblemFailure(_message.Message):
    __slots__ = ("problem_id", "stage", "reason")
    PROBLEM_ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    problem_id: str
    stage: str
    reason: str
    def __init__(self, problem_id: _Optional[str] = ..., stage: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ScoreSummary(_message.Message):
    __slots__ = ("origin", "verdict", "samples", "mean_reward", "mean_ppl", "mean_tokens", "mean_latex_density", "mean_overlap", "oracle_mode", "mean_rsr")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    MEAN_REWARD_FIELD_NUMBER: _ClassVar[int]
    MEAN_PPL_FIELD_NUMBER: _ClassVar[int]
    MEAN_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MEAN_LATEX_DENSITY_FIELD_NUMBER: _ClassVar[int]
    MEAN_OVERLAP_FIELD_NUMBER: _ClassVar[int]
    ORACLE_MODE_FIELD_NUMBER: _ClassVar[int]
    MEAN_RSR_FIELD_NUMBER: _ClassVar[int]
    origin: Origin
    verdict: Verdict
    samples: int
    mean_reward: float
    mean_ppl: float
    mean_tokens: float
    mean_latex_density: float
    mean_overlap: float
    oracle_mode: OracleMode
    mean_rsr: float
    def __init__(self, origin: _Optional[_Union[Origin, str]] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., samples: _Optional[int] = ..., mean_reward: _Optional[float] = ..., mean_ppl: _Optional[float] = ..., mean_tokens: _Optional[float] = ..., mean_latex_density: _Optional[float] = ..., mean_overlap: _Optional[float] = ..., oracle_mode: _Optional[_Union[OracleMode, str]] = ..., mean_rsr: _Optional[float] = ...) -> None: ...
