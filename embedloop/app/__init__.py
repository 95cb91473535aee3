"""The wiring: the ``embedloop`` command line and the daemon. The only package that imports several stages."""
