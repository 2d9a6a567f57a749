"""Tracking attached from outside: ``instrument``/``uninstrument`` and ``emstrack run``."""
