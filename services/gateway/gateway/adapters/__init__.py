"""What connects the gateway's core to the outside: the gRPC server, its servicers and
interceptor, the projector reading the compacted topics, the command publisher, the metrics."""
