"""Each policy's training set as a Hugging Face dataset (`save_to_disk`) with a dataset card, so the sets a study
compared can be loaded, inspected and trained on again without LearnerFit."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from learnerfit.domain.records import origin_name
from learnerfit.v1 import records_pb2


def example_row(example: records_pb2.CuratedExample) -> dict[str, Any]:
    """One row: the chat messages TRL trains on, and the scores and lineage a reader wants next to them."""
    scores = example.scores
    return {
        "id": example.id, "problem_id": example.problem_id, "trajectory_id": example.trajectory_id,
        "messages": [{"role": m.role, "content": m.content} for m in example.messages],
        "origin": origin_name(example.origin), "policy": example.policy, "model": example.model,
        "reward": scores.reward if scores.HasField("reward") else None,
        "ppl": scores.ppl if scores.HasField("ppl") else None,
        "rsr": scores.rsr if scores.HasField("rsr") else None,
        "segment_ppl": list(scores.segment_ppl),
    }


def save_training_set(examples: Sequence[records_pb2.CuratedExample], folder: Path, card: dict[str, Any]) -> Path:
    """Writes the set with `Dataset.save_to_disk` and a README.md dataset card (YAML metadata, then prose)."""
    from datasets import Dataset, disable_progress_bars

    disable_progress_bars()  # one line per set is said by the caller

    folder.mkdir(parents=True, exist_ok=True)
    rows = [example_row(e) for e in examples]
    if rows:
        Dataset.from_list(rows).save_to_disk(str(folder))
    origins = Counter(r["origin"] for r in rows)
    metadata = {**card, "examples": len(rows), "origins": dict(origins), "task_categories": ["text-generation"],
                "tags": ["math", "reasoning", "learnerfit"]}
    yaml = "\n".join(f"{key}: {json.dumps(value)}" for key, value in sorted(metadata.items()))  # JSON is valid YAML
    prose = (f"# {card['policy']}: a LearnerFit training set\n\n"
             f"{len(rows)} examples, one per problem the policy covered, chosen by the `{card['policy']}` curation "
             f"policy from the learner's samples and the Oracle's outputs on the study's problems. Each row holds the "
             f"chat `messages` (system, user, assistant) TRL's SFTTrainer reads, the solution's origin, its reward and "
             f"the learner's perplexity and rank-surprisal ratio on it.\n\n"
             "Load it with `datasets.load_from_disk(<this folder>)`.\n")
    if not rows:
        prose += "\nThe policy curated nothing on these problems, so the folder holds only this card.\n"
    (folder / "README.md").write_text(f"---\n{yaml}\n---\n\n{prose}", encoding="utf-8")
    return folder
