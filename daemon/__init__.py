"""The trackd daemon: receives records from training processes, makes them durable in each
run's log, and (when a server is configured) uploads them. Started as ``python -m
trackd.daemon``; never imported by training code."""
