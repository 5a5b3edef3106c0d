"""The local Apache Kafka broker the project provisions for itself (Maven jars, KRaft, loopback)."""

from eventconfig.localbroker.broker import (KAFKA_VERSION, BrokerError, LocalBroker, default_cache_dir, prewarm,
                                            provision)

__all__ = ["KAFKA_VERSION", "BrokerError", "LocalBroker", "default_cache_dir", "prewarm", "provision"]
