"""``python -m chaos [--seed S] [--rounds R] ...``: one chaos run; prints the figures, exits 1 on a violation."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
from pathlib import Path

from chaos.faults import FAULTS
from chaos.run import ChaosSpec, run_chaos
from eventconfig.errors import EventConfigError


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--kinds", nargs="*", default=[], choices=list(FAULTS), help="fault kinds (default: all)")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--readers", type=int, default=3)
    parser.add_argument("--subscribers", type=int, default=20)
    parser.add_argument("--views", type=int, default=2)
    parser.add_argument("--min-acks", type=int, default=0,
                        help="after the rounds, more rounds until this many writes were acknowledged")
    parser.add_argument("--workdir", type=Path, help="keep processes' logs and data here (default: a temp dir)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # a killed broker is the point, not news
    with tempfile.TemporaryDirectory(prefix="eventconfig-chaos-") as tmp:
        spec = ChaosSpec(workdir=args.workdir or Path(tmp), seed=args.seed, rounds=args.rounds, kinds=args.kinds,
                         writers=args.writers, readers=args.readers, subscribers=args.subscribers, views=args.views,
                         min_acks=args.min_acks)
        try:
            figures = asyncio.run(run_chaos(spec))
        except EventConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print(json.dumps(figures.to_json(), indent=2) if args.json else "\n".join(figures.table()))
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
