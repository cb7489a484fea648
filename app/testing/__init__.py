"""In-process fakes of the outside services (real HTTP servers on 127.0.0.1), for the tests and ``jobs dev``."""
