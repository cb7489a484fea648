"""One Dramatiq middleware per module; :mod:`app.broker` stacks them in the order of docs/architecture.md "Message life cycle"."""
