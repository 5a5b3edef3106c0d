"""eventconfig: an event-sourced configuration service on Apache Kafka."""

__version__ = "0.1.0"
