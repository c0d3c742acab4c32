"""Thin routes: load, authorise (``qistas.policies``), delegate to ``qistas.domain``."""
