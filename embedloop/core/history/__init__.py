"""What happened: logged requests and queries, check runs, triggers, retraining runs."""
