"""Generated protobuf and gRPC stubs (make protos). Do not edit."""
