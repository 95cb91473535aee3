"""Labels: the corpus, feedback pairs, the probe set, and the files they are imported from."""
