"""The deployables: one module per service, each a ServiceSpec and the function that builds its parts.

Run one with `python -m services.<name>` (`--help` lists its API, topics and
settings). Services never import each other; what two of them need lives in
learnerfit/. `python -m services reference` writes the settings reference.
"""

# Every deployable, in the order records flow. Adding a service is its module plus one name here.
SERVICES = ("gateway", "generator", "reward_scorer", "drift_scorer", "refiner", "style_aligner", "curator",
            "trainer", "registry")
