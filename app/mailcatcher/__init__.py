"""The demo mail catcher: a local SMTP server whose messages staff can read in the app.

`make run` starts it so that one-time sign-in links can be followed without a real mailbox.
It is switched on by HOTNET_MAILCATCHER_DIR and never meant for production.
"""
