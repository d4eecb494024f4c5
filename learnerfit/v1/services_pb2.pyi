from learnerfit.v1 import records_pb2 as _records_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubmitBatchRequest(_message.Message):
    __slots__ = ("problems", "sampling", "curation_policy", "oracle_modes", "oracle_budget")
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    CURATION_POLICY_FIELD_NUMBER: _ClassVar[int]
    ORACLE_MODES_FIELD_NUMBER: _ClassVar[int]
    ORACLE_BUDGET_FIELD_NUMBER: _ClassVar[int]
    problems: _containers.RepeatedCompositeFieldContainer[_records_pb2.Problem]
    sampling: _records_pb2.SamplingSpec
    curation_policy: str
    oracle_modes: _containers.RepeatedScalarFieldContainer[_records_pb2.OracleMode]
    oracle_budget: _records_pb2.OracleBudget
    def __init__(self, problems: _Optional[_Iterable[_Union[_records_pb2.Problem, _Mapping]]] = ..., sampling: _Optional[_Union[_records_pb2.SamplingSpec, _Mapping]] = ..., curation_policy: _Optional[str] = ..., oracle_modes: _Optional[_Iterable[_Union[_records_pb2.OracleMode, str]]] = ..., oracle_budget: _Optional[_Union[_records_pb2.OracleBudget, _Mapping]] = ...) -> None: ...

class SubmitBatchResponse(_message.Message):
    __slots__ = ("batch_id", "problem_ids", "already_submitted", "status")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_IDS_FIELD_NUMBER: _ClassVar[int]
    ALREADY_SUBMITTED_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    problem_ids: _containers.RepeatedScalarFieldContainer[str]
    already_submitted: bool
    status: _records_pb2.BatchStatus
    def __init__(self, batch_id: _Optional[str] = ..., problem_ids: _Optional[_Iterable[str]] = ..., already_submitted: _Optional[bool] = ..., status: _Optional[_Union[_records_pb2.BatchStatus, _Mapping]] = ...) -> None: ...

class GetBatchRequest(_message.Message):
    __slots__ = ("batch_id",)
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    def __init__(self, batch_id: _Optional[str] = ...) -> None: ...

class StreamResultsRequest(_message.Message):
    __slots__ = ("batch_id",)
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    def __init__(self, batch_id: _Optional[str] = ...) -> None: ...

class GenerateRequest(_message.Message):
    __slots__ = ("problems",)
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    problems: _containers.RepeatedCompositeFieldContainer[_records_pb2.Problem]
    def __init__(self, problems: _Optional[_Iterable[_Union[_records_pb2.Problem, _Mapping]]] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("trajectories",)
    TRAJECTORIES_FIELD_NUMBER: _ClassVar[int]
    trajectories: _containers.RepeatedCompositeFieldContainer[_records_pb2.Trajectory]
    def __init__(self, trajectories: _Optional[_Iterable[_Union[_records_pb2.Trajectory, _Mapping]]] = ...) -> None: ...

class ScoreTrajectoriesRequest(_message.Message):
    __slots__ = ("trajectories",)
    TRAJECTORIES_FIELD_NUMBER: _ClassVar[int]
    trajectories: _containers.RepeatedCompositeFieldContainer[_records_pb2.Trajectory]
    def __init__(self, trajectories: _Optional[_Iterable[_Union[_records_pb2.Trajectory, _Mapping]]] = ...) -> None: ...

class ScoreTrajectoriesResponse(_message.Message):
    __slots__ = ("trajectories",)
    TRAJECTORIES_FIELD_NUMBER: _ClassVar[int]
    trajectories: _containers.RepeatedCompositeFieldContainer[_records_pb2.Trajectory]
    def __init__(self, trajectories: _Optional[_Iterable[_Union[_records_pb2.Trajectory, _Mapping]]] = ...) -> None: ...

class ScoreDriftRequest(_message.Message):
    __slots__ = ("trajectories", "checkpoint")
    TRAJECTORIES_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    trajectories: _containers.RepeatedCompositeFieldContainer[_records_pb2.Trajectory]
    checkpoint: str
    def __init__(self, trajectories: _Optional[_Iterable[_Union[_records_pb2.Trajectory, _Mapping]]] = ..., checkpoint: _Optional[str] = ...) -> None: ...

class ScoreDriftResponse(_message.Message):
    __slots__ = ("trajectories",)
    TRAJECTORIES_FIELD_NUMBER: _ClassVar[int]
    trajectories: _containers.RepeatedCompositeFieldContainer[_records_pb2.Trajectory]
    def __init__(self, trajectories: _Optional[_Iterable[_Union[_records_pb2.Trajectory, _Mapping]]] = ...) -> None: ...

class RefineRequest(_message.Message):
    __slots__ = ("trajectories", "mode")
    TRAJECTORIES_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    trajectories: _containers.RepeatedCompositeFieldContainer[_records_pb2.Trajectory]
    mode: _records_pb2.OracleMode
    def __init__(self, trajectories: _Optional[_Iterable[_Union[_records_pb2.Trajectory, _Mapping]]] = ..., mode: _Optional[_Union[_records_pb2.OracleMode, str]] = ...) -> None: ...

class RefineResponse(_message.Message):
    __slots__ = ("trajectories",)
    TRAJECTORIES_FIELD_NUMBER: _ClassVar[int]
    trajectories: _containers.RepeatedCompositeFieldContainer[_records_pb2.Trajectory]
    def __init__(self, trajectories: _Optional[_Iterable[_Union[_records_pb2.Trajectory, _Mapping]]] = ...) -> None: ...

class AlignRequest(_message.Message):
    __slots__ = ("trajectories", "mode")
    TRAJECTORIES_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    trajectories: _containers.RepeatedCompositeFieldContainer[_records_pb2.Trajectory]
    mode: _records_pb2.OracleMode
    def __init__(self, trajectories: _Optional[_Iterable[_Union[_records_pb2.Trajectory, _Mapping]]] = ..., mode: _Optional[_Union[_records_pb2.OracleMode, str]] = ...) -> None: ...

class AlignResponse(_message.Message):
    __slots__ = ("trajectories",)
    TRAJECTORIES_FIELD_NUMBER: _ClassVar[int]
    trajectories: _containers.RepeatedCompositeFieldContainer[_records_pb2.Trajectory]
    def __init__(self, trajectories: _Optional[_Iterable[_Union[_records_pb2.Trajectory, _Mapping]]] = ...) -> None: ...

class CurateRequest(_message.Message):
    __slots__ = ("trajectories", "policy")
    TRAJECTORIES_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    trajectories: _containers.RepeatedCompositeFieldContainer[_records_pb2.Trajectory]
    policy: str
    def __init__(self, trajectories: _Optional[_Iterable[_Union[_records_pb2.Trajectory, _Mapping]]] = ..., policy: _Optional[str] = ...) -> None: ...

class CurateResponse(_message.Message):
    __slots__ = ("decisions", "examples")
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    decisions: _containers.RepeatedCompositeFieldContainer[_records_pb2.CurationDecision]
    examples: _containers.RepeatedCompositeFieldContainer[_records_pb2.CuratedExample]
    def __init__(self, decisions: _Optional[_Iterable[_Union[_records_pb2.CurationDecision, _Mapping]]] = ..., examples: _Optional[_Iterable[_Union[_records_pb2.CuratedExample, _Mapping]]] = ...) -> None: ...

class TrainRequest(_message.Message):
    __slots__ = ("batch", "given", "start_from")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    GIVEN_FIELD_NUMBER: _ClassVar[int]
    START_FROM_FIELD_NUMBER: _ClassVar[int]
    batch: HeldBatch
    given: ExampleSet
    start_from: str
    def __init__(self, batch: _Optional[_Union[HeldBatch, _Mapping]] = ..., given: _Optional[_Union[ExampleSet, _Mapping]] = ..., start_from: _Optional[str] = ...) -> None: ...

class HeldBatch(_message.Message):
    __slots__ = ("batch_id", "min_examples")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    MIN_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    min_examples: int
    def __init__(self, batch_id: _Optional[str] = ..., min_examples: _Optional[int] = ...) -> None: ...

class ExampleSet(_message.Message):
    __slots__ = ("examples", "seed", "epochs")
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    examples: _containers.RepeatedCompositeFieldContainer[_records_pb2.CuratedExample]
    seed: int
    epochs: float
    def __init__(self, examples: _Optional[_Iterable[_Union[_records_pb2.CuratedExample, _Mapping]]] = ..., seed: _Optional[int] = ..., epochs: _Optional[float] = ...) -> None: ...

class TrainResponse(_message.Message):
    __slots__ = ("checkpoint",)
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    checkpoint: _records_pb2.Checkpoint
    def __init__(self, checkpoint: _Optional[_Union[_records_pb2.Checkpoint, _Mapping]] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("version", "problems", "k", "max_new_tokens")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    MAX_NEW_TOKENS_FIELD_NUMBER: _ClassVar[int]
    version: str
    problems: _containers.RepeatedCompositeFieldContainer[_records_pb2.Problem]
    k: int
    max_new_tokens: int
    def __init__(self, version: _Optional[str] = ..., problems: _Optional[_Iterable[_Union[_records_pb2.Problem, _Mapping]]] = ..., k: _Optional[int] = ..., max_new_tokens: _Optional[int] = ...) -> None: ...

class EvaluateResponse(_message.Message):
    __slots__ = ("version", "eval", "samples")
    class EvalEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EVAL_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    version: str
    eval: _containers.ScalarMap[str, float]
    samples: _containers.RepeatedCompositeFieldContainer[HeldOutSample]
    def __init__(self, version: _Optional[str] = ..., eval: _Optional[_Mapping[str, float]] = ..., samples: _Optional[_Iterable[_Union[HeldOutSample, _Mapping]]] = ...) -> None: ...

class HeldOutSample(_message.Message):
    __slots__ = ("problem_id", "sample_index", "text", "answer", "verdict", "truncated", "token_count", "first_answer", "first_correct")
    PROBLEM_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_INDEX_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    TOKEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    FIRST_ANSWER_FIELD_NUMBER: _ClassVar[int]
    FIRST_CORRECT_FIELD_NUMBER: _ClassVar[int]
    problem_id: str
    sample_index: int
    text: str
    answer: str
    verdict: _records_pb2.Verdict
    truncated: bool
    token_count: int
    first_answer: str
    first_correct: bool
    def __init__(self, problem_id: _Optional[str] = ..., sample_index: _Optional[int] = ..., text: _Optional[str] = ..., answer: _Optional[str] = ..., verdict: _Optional[_Union[_records_pb2.Verdict, str]] = ..., truncated: _Optional[bool] = ..., token_count: _Optional[int] = ..., first_answer: _Optional[str] = ..., first_correct: _Optional[bool] = ...) -> None: ...

class SetPromotionRequest(_message.Message):
    __slots__ = ("version", "promotion")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_FIELD_NUMBER: _ClassVar[int]
    version: str
    promotion: _records_pb2.Promotion
    def __init__(self, version: _Optional[str] = ..., promotion: _Optional[_Union[_records_pb2.Promotion, _Mapping]] = ...) -> None: ...

class RegisterRequest(_message.Message):
    __slots__ = ("source", "base_model", "kind", "example_ids", "policy", "eval", "training", "promotion")
    class EvalEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_IDS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    EVAL_FIELD_NUMBER: _ClassVar[int]
    TRAINING_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_FIELD_NUMBER: _ClassVar[int]
    source: str
    base_model: str
    kind: _records_pb2.CheckpointKind
    example_ids: _containers.RepeatedScalarFieldContainer[str]
    policy: str
    eval: _containers.ScalarMap[str, float]
    training: _records_pb2.TrainingRecipe
    promotion: _records_pb2.Promotion
    def __init__(self, source: _Optional[str] = ..., base_model: _Optional[str] = ..., kind: _Optional[_Union[_records_pb2.CheckpointKind, str]] = ..., example_ids: _Optional[_Iterable[str]] = ..., policy: _Optional[str] = ..., eval: _Optional[_Mapping[str, float]] = ..., training: _Optional[_Union[_records_pb2.TrainingRecipe, _Mapping]] = ..., promotion: _Optional[_Union[_records_pb2.Promotion, _Mapping]] = ...) -> None: ...

class ListCheckpointsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCheckpointsResponse(_message.Message):
    __slots__ = ("checkpoints", "next_page_token")
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    checkpoints: _containers.RepeatedCompositeFieldContainer[_records_pb2.Checkpoint]
    next_page_token: str
    def __init__(self, checkpoints: _Optional[_Iterable[_Union[_records_pb2.Checkpoint, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetCheckpointRequest(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: str
    def __init__(self, version: _Optional[str] = ...) -> None: ...
