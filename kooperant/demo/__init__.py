"""``kooperant demo``: a simulated machine park, broker, aggregator and agent in one process."""
