"""Request and response bodies, named by role: ``XCreate``, ``XRead``, ``XPage``."""
