"""The scheduler sidecar: fires the schedule table (``schedules/``) exactly once across any number of replicas.

``state`` is the control API (list, pause, resume, run now, recent runs) used by the CLI and the admin;
``engine`` is the leader's firing loop; ``leader`` the Redis leader lock; ``fire`` the durable claim of one fire.
"""
