"""Training: SFT/DFT on curated examples with TRL (sft.py), Avg@k evaluation (evaluate.py), the local reward
model's build (reward_model.py), and the one home of training hyper-parameters (config.py)."""
