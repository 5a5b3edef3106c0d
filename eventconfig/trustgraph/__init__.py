"""The TrustGraph front end: TrustGraph's own JSON config protocol on its Kafka topics.

TrustGraph processes talk to their config service over ``<topicspace>.request.config``,
``<topicspace>.response.config`` and ``<topicspace>.notify.config`` with JSON bodies. ``serve
--trustgraph`` forwards those requests into eventconfig's request topic (:mod:`.frontend`), answers
them from eventconfig's committed responses, and the push projector adds TrustGraph pushes to its
pokes. :mod:`.wire` is the pure translation both ways; :mod:`.dump` reads a TrustGraph config dump
for ``eventconfig import``.
"""
