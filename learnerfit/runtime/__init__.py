"""What every service process shares and no stage needs to know about: settings, the Kafka bus, the stage
runner, the topic follower, the gRPC server and its error mapping, metrics, logs, and the process's life.
It knows no domain: a service hands it a spec (spec.py) and plain functions."""
