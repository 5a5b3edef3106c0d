"""Pokes: the pure projection of log records to ``ConfigPush`` and its exactly-once Kafka adapter."""
