"""The HTTP gateway: the config service's API and web console for people and tools without Kafka.

``eventconfig gateway`` runs it. It is a client of the service: writes are ConfigClient requests
carrying the caller's actor, reads come from a LocalView of its own, history/state/diff from the
history topic, live changes from the notify topic as Server-Sent Events.

The package imports nothing itself, so ``eventconfig`` commands other than ``gateway`` do not load the
web framework (an extra: ``pip install 'eventconfig[gateway]'``).

Example::

    from eventconfig.gateway.app import GatewayServer, create_app
    from eventconfig.gateway.backend import Backend
"""
