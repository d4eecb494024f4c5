"""What every service shares: settings, the Kafka bus and stage runner, the gRPC runtime, metrics, ids."""
