"""Work that runs beside the SMTP exchange: messages made ahead while the server is busy,
and the pace shared by every connection of a sender process.

Nothing here knows about ledgers (see ledger.py for the rules that keep a crash from
repeating more than one message per connection).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator


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


class Lookahead:
    """The items of `items` made ahead, in this same thread, by `make_one` — which the SMTP
    exchange calls while the server is busy with what it was just sent — at most `depth`
    ahead. No thread: the work overlaps the server's, not this process's other threads (in
    one process they would take turns on the interpreter lock). An error in the making is
    raised where that item would have been used."""

    def __init__(self, items: Iterable, depth: int = 2):
        self.items = iter(items)
        self.depth = depth
        self.made: deque = deque()
        self.over = False

    def make_one(self) -> None:
        if self.over or len(self.made) >= self.depth:
            return
        try:
            self.made.append(next(self.items))
        except StopIteration:
            self.over = True
        except Exception as exc:  # noqa: BLE001 - raised where the item is used
            self.made.append(_Failed(exc))
            self.over = True

    def __iter__(self) -> Iterator:
        while True:
            if not self.made:
                self.make_one()
                if not self.made:
                    return
            item = self.made.popleft()
            if isinstance(item, _Failed):
                raise item.error
            yield item
