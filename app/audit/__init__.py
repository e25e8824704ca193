"""The audit log: who exported or viewed personal data, and other staff actions."""
