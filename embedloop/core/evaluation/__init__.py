"""Evaluation shared by the probe check, the gates and the benchmarks: retrieval metrics, probe-set
evaluation of an encoder as served, STS retention."""
