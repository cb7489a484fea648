"""The email queue's work: who gets which email, rendering, exactly-once claims in ``email_log``, and backends.

Kept import-light on purpose: :mod:`app.email.service` is the entry point the actors call, and nothing here is
imported by the enqueue helpers (the web app must not load Jinja2, css-inline or the SendGrid SDK).
"""
