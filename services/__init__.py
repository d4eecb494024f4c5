"""The deployables: one module per service, each a ServiceSpec and the function that builds its parts.

Run one with `python -m services.<name>` (`--help` lists its API, topics and
settings). Services never import each other; what two of them need lives in
learnerfit/. `python -m services` lists them; `python -m services reference`
writes the settings reference.
"""

# Every deployable, in the order the local stack starts them: downstream first, so every consumer is in place
# when the gateway opens, and the registry before those that ask it. Adding a service is its module plus its name
# here (the local stack reads this list with `python -m services`).
SERVICES = ("registry", "trainer", "curator", "refiner", "style_aligner", "drift_scorer", "reward_scorer",
            "generator", "gateway")
