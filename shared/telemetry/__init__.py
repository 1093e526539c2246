"""What operators watch: Prometheus metrics (metrics.py) and structured logs (logging.py).

It stands on the ground floor only (it imports shared.keys, nothing else of shared/), so every
room that records a metric or binds a log context may import it.
"""
