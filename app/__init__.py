"""The job platform: enqueue helpers, services, broker and middleware.

Importing ``app`` is cheap on purpose: the web app does ``from app import enqueue`` and must not load the
broker's workers, WeasyPrint or the email and sync code.
"""
