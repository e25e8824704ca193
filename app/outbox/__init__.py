"""The outbox: every message the app sends (apart from newsletter issues, which have their own
ledger with the same rules) is a row written in the same transaction as the change that
causes it, and the sender process delivers it. No web request ever talks to SMTP."""
