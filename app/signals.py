"""Signals a lower layer sends so that the layers above it can act on their own data.

The registry erases a withdrawn or declined supporter's personal data; each domain that
keeps copies (newsletter deliveries, queued mail, …) answers `supporter_erased` for its own
tables, in the same transaction. The receiver gets the sender (the supporter id) only.
"""
from blinker import Namespace

_signals = Namespace()

# sender: the supporter's id; sent inside the erasing transaction (receivers do not commit).
supporter_erased = _signals.signal("supporter-erased")
