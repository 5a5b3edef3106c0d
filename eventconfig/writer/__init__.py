"""The writer: pure request handling and batching (:mod:`.handler`, :mod:`.batch`) and the fenced
writer role that commits their records in transactions (:mod:`.service`)."""
