"""One Dramatiq middleware per module; :mod:`app.broker` stacks them in the order of ARCHITECTURE.md."""
