"""The retraining stage: data, hard-negative mining, low-LR fine-tuning, gates, one run end to end.
Imports only embedloop.core; applying the promotion policy to a run's result is the wiring's job."""
