"""Simulated hardware for tests: a fake ``pynvml`` module and a fake Linux powercap tree."""
