"""``python -m server.celery_slot --slot N [--gpu G]``: one Celery slot's process, which ``workshop worker``
starts per slot or GPU when WORKSHOP_EXECUTOR=celery (server/celery_worker.py). Its settings come from the
same WORKSHOP_* environment as its parent's."""

from __future__ import annotations

import argparse
import logging
import threading

from server.app import create_app
from server.celery_worker import consume_slot, install_stop_handlers
from server.executor_runtime import slot_maker


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One Celery slot of `workshop worker`.")
    parser.add_argument("--slot", type=int, default=0)
    parser.add_argument("--gpu", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app()
    stop = threading.Event()
    install_stop_handlers(stop)
    with app.app_context():
        consume_slot(app, slot_maker(), args.slot, args.gpu, stop)


if __name__ == "__main__":
    main()
