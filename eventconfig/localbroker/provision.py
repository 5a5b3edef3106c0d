"""``python -m eventconfig.localbroker.provision``: resolve the broker jars now (CI, first setup)."""

import logging
import time

from eventconfig.localbroker.broker import provision

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = time.monotonic()
    lib = provision()
    print(f"Kafka broker jars ready in {lib} ({time.monotonic() - started:.1f} s)")
