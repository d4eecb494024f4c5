"""The embedded registry: `<root>/checkpoints/<version>/` plus an SQLite index `registry.sqlite` (in the root, or in
`index_dir`: on Kubernetes the files are on a volume the learner pods share, the index on the registry's own).

Registration is all or nothing: the files are copied to a staging folder, moved into
place, and the index row is committed last; a crash at any point leaves no row, and
the next start removes the leftovers. Versions are `v1`, `v2`, ...; a name or path
from a request can never reach outside the root.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from pathlib import Path

from google.protobuf.json_format import MessageToJson, Parse

from learnerfit.domain.ids import stable_id, version_number
from learnerfit.domain.promotion import FOLLOWABLE, followed, state_words
from learnerfit.errors import FailedPrecondition, InvalidInput, NotFound
from learnerfit.v1 import records_pb2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    number      INTEGER PRIMARY KEY,
    base_model  TEXT NOT NULL,
    kind        INTEGER NOT NULL,
    example_ids TEXT NOT NULL,   -- JSON list
    policy      TEXT NOT NULL,
    eval        TEXT NOT NULL,   -- JSON object
    created_at  REAL NOT NULL,
    training    TEXT NOT NULL DEFAULT '{}',  -- JSON of a TrainingRecipe
    promotion   TEXT NOT NULL DEFAULT '{}',  -- JSON of a Promotion
    registration TEXT NOT NULL DEFAULT ''    -- what was asked for (registration_key): a retried call finds it
)
"""
# Columns added after the first schema, for indexes an older release created (each added once, empty for old rows).
_ADDED_COLUMNS = {"training": "TEXT NOT NULL DEFAULT '{}'", "promotion": "TEXT NOT NULL DEFAULT '{}'",
                  "registration": "TEXT NOT NULL DEFAULT ''"}
_COLUMNS = "number, base_model, kind, example_ids, policy, eval, created_at, training, promotion"


DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 50, 1000


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")  # never in a registered checkpoint

def registration_key(base_model: str, kind: int, example_ids: Sequence[str], policy: str,
                     training: records_pb2.TrainingRecipe | None) -> str:
    """What a registration stands for: its model, kind, policy, recipe and set of examples ("" for one trained on no
    listed examples, such as an imported checkpoint: those are never taken for one another)."""
    if not example_ids:
        return ""
    recipe = (training or records_pb2.TrainingRecipe()).SerializeToString(deterministic=True).hex()
    return stable_id("registration", base_model, kind, policy, recipe, *sorted(set(example_ids)))


class CheckpointRegistry:
    """Opened by its one writer (the trainer), which cleans up what an interrupted registration left; everyone
    else opens it with `reader()`, which never removes anything (a reader starting while the writer registers
    must not delete the registration in progress)."""

    def __init__(self, root: Path, *, writer: bool = True, index_dir: Path | None = None):
        self.root = Path(root).resolve()
        self.writer = writer
        self.index = Path(index_dir or self.root).resolve() / "registry.sqlite"
        (self.root / "checkpoints").mkdir(parents=True, exist_ok=True)
        self.index.parent.mkdir(parents=True, exist_ok=True)
        self._query(_SCHEMA)
        self._add_new_columns()
        self._query("CREATE INDEX IF NOT EXISTS checkpoints_registration ON checkpoints (registration)")
        if writer:
            self._remove_leftovers()

    @classmethod
    def reader(cls, root: Path, index_dir: Path | None = None) -> CheckpointRegistry:
        return cls(root, writer=False, index_dir=index_dir)

    def _db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.index, timeout=30, isolation_level=None)
        # Switching to WAL takes a lock the busy timeout does not wait for: two processes opening a new index at once
        # (the trainer and the registry starting together) can see "database is locked". Once set, it stays set.
        for attempt in range(50):
            try:
                if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    db.execute("PRAGMA journal_mode=WAL")
                return db
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 49:
                    db.close()
                    raise
                time.sleep(0.1)
        return db

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with closing(self._db()) as db:
            return db.execute(sql, params).fetchall()

    def _add_new_columns(self) -> None:
        have = {row[1] for row in self._query("PRAGMA table_info(checkpoints)")}
        for name, declaration in _ADDED_COLUMNS.items():
            if name not in have:
                try:
                    self._query(f"ALTER TABLE checkpoints ADD COLUMN {name} {declaration}")
                except sqlite3.OperationalError as exc:
                    if "duplicate column" not in str(exc):  # another process added it first
                        raise

    def _remove_leftovers(self) -> None:
        """Staging folders and folders without an index row: what an interrupted registration left."""
        known = {c.version for c in self.list()}
        for entry in (self.root / "checkpoints").iterdir():
            if entry.name.startswith(".staging-") or entry.name not in known:
                shutil.rmtree(entry, ignore_errors=True)

    def register(self, source: Path, *, base_model: str, kind: int, example_ids: Sequence[str] = (),
                 policy: str = "", eval_results: Mapping[str, float] | None = None,
                 training: records_pb2.TrainingRecipe | None = None,
                 promotion: records_pb2.Promotion | None = None) -> records_pb2.Checkpoint:
        """Copies `source` in as the next version; `promotion` is its state from the start (e.g. pending while the
        trainer's gate compares it with the learner). Asking again for a registration already made (the same
        examples, recipe, model and policy: a retry after a lost reply) returns the checkpoint it made."""
        if not self.writer:
            raise FailedPrecondition(f"registry {self.root} is open for reading only")
        key = registration_key(base_model, kind, example_ids, policy, training)
        if (existing := self._registered(key)) is not None:
            return existing
        source = Path(source)
        if not source.is_dir():
            raise InvalidInput("source", f"checkpoint source {source} is not a directory")
        pickles = sorted(str(p.relative_to(source)) for p in source.rglob("*") if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            # Loading a pickle runs code: whoever loads a registered checkpoint gets safetensors and JSON only.
            raise InvalidInput("source", f"checkpoint source {source} holds pickle files {pickles}: save weights as "
                                         "safetensors")
        staging = self.root / "checkpoints" / f".staging-{uuid.uuid4().hex}"
        shutil.copytree(source, staging)
        try:
            # One registration at a time: version numbers never collide. The checkpoint exists from the commit on.
            with self._immediate() as db:
                same = db.execute("SELECT number FROM checkpoints WHERE registration = ?", (key,)).fetchone() \
                    if key else None
                if same is not None:  # made meanwhile by a call that raced this one
                    shutil.rmtree(staging, ignore_errors=True)
                    return self.get(f"v{same[0]}")
                number = (db.execute("SELECT COALESCE(MAX(number), 0) FROM checkpoints").fetchone()[0]) + 1
                staging.rename(self.root / "checkpoints" / f"v{number}")
                db.execute(f"INSERT INTO checkpoints ({_COLUMNS}, registration) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (number, base_model, kind, json.dumps(list(example_ids)), policy,
                            json.dumps(dict(eval_results or {})), time.time(),
                            MessageToJson(training or records_pb2.TrainingRecipe(), indent=None),
                            self._decided(db, promotion or records_pb2.Promotion()), key))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return self.get(f"v{number}")

    def _registered(self, key: str) -> records_pb2.Checkpoint | None:
        rows = self._query(f"SELECT {_COLUMNS} FROM checkpoints WHERE registration = ?", (key,)) if key else []
        return self._checkpoint(rows[0]) if rows else None

    @contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: writers queue), committed when the block ends, rolled back if it
        raises."""
        db = self._db()
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    def set_promotion(self, version: str, promotion: records_pb2.Promotion) -> records_pb2.Checkpoint:
        """Records a promotion decision on a registered checkpoint (a promoted one gets the next sequence number, so
        it is followed from now on). A row update: any registry instance may make it beside the writer's
        registrations."""
        number = version_number(version)
        with self._immediate() as db:
            rows = db.execute("SELECT promotion FROM checkpoints WHERE number = ?", (number,)).fetchall()
            if not rows:
                raise NotFound(f"no checkpoint {version} in {self.root}")
            previous = Parse(rows[0][0], records_pb2.Promotion())
            if promotion.state == records_pb2.PROMOTION_STATE_ROLLED_BACK and previous.state not in FOLLOWABLE:
                raise FailedPrecondition(f"{version} is {state_words(previous.state)}: only a promoted checkpoint can "
                                         "be rolled back")
            db.execute("UPDATE checkpoints SET promotion = ? WHERE number = ?",
                       (self._decided(db, promotion, previous.sequence), number))
        return self.get(version)

    @staticmethod
    def _decided(db: sqlite3.Connection, promotion: records_pb2.Promotion, sequence: int = 0) -> str:
        """The promotion as stored: stamped with its time; a promoted one gets the next sequence number, any other
        keeps the one it had (numbers are never reused)."""
        decided = records_pb2.Promotion()
        decided.CopyFrom(promotion)
        if decided.state != records_pb2.PROMOTION_STATE_UNSPECIFIED:
            decided.decided_at.GetCurrentTime()
        decided.sequence = sequence
        if decided.state == records_pb2.PROMOTION_STATE_PROMOTED:
            stored = [Parse(row[0], records_pb2.Promotion()) for row in db.execute("SELECT promotion FROM checkpoints")]
            decided.sequence = 1 + max((p.sequence for p in stored), default=0)
        return MessageToJson(decided, indent=None)

    def followed(self) -> records_pb2.Checkpoint | None:
        """The checkpoint the learner services follow (learnerfit/domain/promotion.py: the promoted one promoted
        last)."""
        return followed(self.list())

    def register_incoming(self, source: str, **metadata) -> records_pb2.Checkpoint:
        """Registers `incoming/<name>` (a folder a remote trainer wrote on the shared volume), then removes it."""
        incoming = (self.root / "incoming").resolve()
        folder = (self.root / source).resolve()
        if folder.parent != incoming:
            raise InvalidInput("source", f"{source!r} is not a folder directly under the registry's incoming/")
        # register() answers a registration already made before it looks at the folder: a retry after a lost reply
        # finds the folder removed by the call that registered it.
        checkpoint = self.register(folder, **metadata)
        shutil.rmtree(folder, ignore_errors=True)
        return checkpoint

    def list(self) -> list[records_pb2.Checkpoint]:
        return [self._checkpoint(row) for row in self._query(f"SELECT {_COLUMNS} FROM checkpoints ORDER BY number")]

    def page(self, page_size: int = 0, page_token: str = "") -> tuple[list[records_pb2.Checkpoint], str]:
        """One page, oldest first, and the token of the next ("" on the last page). The token is the last version
        seen, so pages stay consistent while new checkpoints are registered."""
        if page_size < 0:
            raise InvalidInput("page_size", f"{page_size} is negative")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = 0
        if page_token:
            try:
                after = version_number(page_token, "page_token")
            except InvalidInput:
                raise InvalidInput("page_token", f"{page_token[:80]!r} is not a token this registry gave out") from None
        rows = self._query(f"SELECT {_COLUMNS} FROM checkpoints WHERE number > ? ORDER BY number LIMIT ?",
                           (after, size + 1))
        checkpoints = [self._checkpoint(row) for row in rows[:size]]
        return checkpoints, checkpoints[-1].version if len(rows) > size else ""

    def latest(self) -> records_pb2.Checkpoint | None:
        checkpoints = self.list()
        return checkpoints[-1] if checkpoints else None

    def get(self, version: str) -> records_pb2.Checkpoint:
        rows = self._query(f"SELECT {_COLUMNS} FROM checkpoints WHERE number = ?", (version_number(version),))
        if not rows:
            raise NotFound(f"no checkpoint {version} in {self.root}")
        return self._checkpoint(rows[0])

    def path_of(self, checkpoint: records_pb2.Checkpoint) -> Path:
        path = (self.root / checkpoint.path).resolve()
        if not path.is_relative_to(self.root):
            raise InvalidInput("path", f"checkpoint path {checkpoint.path!r} leaves the registry root")
        return path

    def _checkpoint(self, row) -> records_pb2.Checkpoint:
        number, base_model, kind, example_ids, policy, eval_json, created_at, training, promotion = row
        checkpoint = records_pb2.Checkpoint(version=f"v{number}", base_model=base_model, kind=kind,
                                            path=f"checkpoints/v{number}", example_ids=json.loads(example_ids),
                                            policy=policy, eval=json.loads(eval_json),
                                            uri=str(self.root / "checkpoints" / f"v{number}"),
                                            training=Parse(training, records_pb2.TrainingRecipe()),
                                            promotion=Parse(promotion, records_pb2.Promotion()))
        checkpoint.created_at.FromNanoseconds(int(created_at * 1e9))
        return checkpoint
