"""What operators watch: Prometheus metrics (metrics.py) and structured logs (logging.py).

A ground-floor room: it imports nothing of shared/ but keys, so every other room may use it.
"""
