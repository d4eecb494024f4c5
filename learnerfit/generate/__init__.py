"""What is generated from the service catalog and the services' specs, so it never drifts from the code: the
Kubernetes base (manifests.py) and the settings reference (reference.py). `python -m learnerfit.generate --help`."""
