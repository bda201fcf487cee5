"""The worker process: registers every saga and its activities, polls as its Worker Deployment
Version, relays the outbox to the bus and the webhooks, and serves its metrics."""

import sys

# The workflow sandbox imports the workflow modules afresh for every workflow it runs; without
# cached bytecode each of those imports compiles the source again (PYTHONDONTWRITEBYTECODE is
# common in containers and shells). Measured with py-spy: ~4% of the worker's CPU under load.
sys.dont_write_bytecode = False
