"""Parity of the two adapters: the same call options give the same HTTP request and errors."""
