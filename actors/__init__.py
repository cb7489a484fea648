"""Thin Dramatiq actors, one module per queue; each worker group imports only its queue's module."""
