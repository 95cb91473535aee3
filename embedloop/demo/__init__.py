"""The demo: a showcase that plays the whole loop on real data from outside and reports on it.
Above the wiring: it imports only embedloop.core and starts the ``embedloop`` command as processes."""
