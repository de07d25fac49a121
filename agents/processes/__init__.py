"""Process assembly: the clients, topics and hooks each long-running privrec process is built from.

The command line, the benches, the demo and the tests all start the same
trainer and worker; building them here (not in ``agents/cli``) gives each one
a single place to change, and keeps the CLI to parsing arguments and printing.
"""
