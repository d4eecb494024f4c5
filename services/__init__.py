"""The deployables: one module per service, each a ServiceSpec and the function that builds its parts.

Run one with `python -m services.<name>` (`--help` lists its API, topics and settings). Services never import each
other; what two of them need lives in learnerfit/. Which services there are, in what order they start, whom each
calls and what its pod needs is the catalog's to say (learnerfit/catalog.py).
"""
