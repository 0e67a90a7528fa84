"""OTLP/HTTP path: protobuf encoding and the exporter."""
