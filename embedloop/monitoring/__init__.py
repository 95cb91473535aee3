"""The monitoring stage: drift detection and probe checks, their metrics, alert rules and dashboard.
Imports only embedloop.core; a check raises a trigger, it never calls retraining."""
