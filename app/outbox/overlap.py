"""Work that runs beside the SMTP exchange: messages made ahead in a thread of their own, and
the pace shared by every connection of a sender process.

Both are plain threading; nothing here knows about ledgers (see ledger.py for the rules that
keep a crash from repeating more than one message per connection).
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator

from flask import current_app


class Pacer:
    """HOTNET_SEND_RATE for a whole process: each message starts at the earliest 1/rate
    seconds after the one before it, whichever connection sends it (0: no limit)."""

    def __init__(self, rate: int):
        self.interval = 1.0 / rate if rate else 0.0
        self.lock = threading.Lock()
        self.next = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            slot = max(now, self.next)
            self.next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


_END = object()


class Ahead:
    """The items of `items` (an iterable, typically a generator) made in a thread of its own,
    inside this app's context, at most `depth` ahead of their use. An error in the making is
    raised where the items are used. As a context manager; leaving it stops the maker.

    The maker must not use the database session of the thread that uses the items: it gets
    an app context (and so a session) of its own."""

    def __init__(self, items: Iterable, depth: int = 16):
        self.items = items
        self.queue: queue.Queue = queue.Queue(depth)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._make, args=(current_app._get_current_object(),),
                                       name="hotnet-ahead", daemon=True)

    def __enter__(self) -> Ahead:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()

    def _make(self, app) -> None:
        try:
            with app.app_context():
                for item in self.items:
                    if not self._put(item):
                        return
        except BaseException as exc:  # noqa: BLE001 - handed over to the user of the items
            self._put(_Failed(exc))
            return
        self._put(_END)

    def _put(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator:
        while True:
            item = self.queue.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
