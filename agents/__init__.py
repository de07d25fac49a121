"""The Faust app, its agents and the ``privrec`` command line (the edges of privrec)."""
