"""The trainer: fine-tunes the learner on curated examples with TRL and registers the checkpoints.

Built: `sft.py` (SFTTrainer, solution-only loss, nll or dft, LoRA or full; evaluate and
register; `python -m trainer.sft EXPORT.jsonl`), `evaluate.py` (Avg@k on held-out
problems), `reward_model.py` (the local reward model). Not yet: the trainer as a
service consuming `curated`, and the closed loop in which generator and drift scorer
follow the newest checkpoint (issue 5).
"""
