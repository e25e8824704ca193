"""Staff users, roles, sign-in, and one-time sign-in links for supporters."""
