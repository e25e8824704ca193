"""Newsletters (推進員向けの通信): writing, audiences, rendering, the delivery ledger and its sender."""
