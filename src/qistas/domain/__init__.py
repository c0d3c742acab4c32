"""Use cases. Functions take a session and keyword arguments, flush, and never commit:
the caller (a route, a CLI command, a test) owns the transaction."""
