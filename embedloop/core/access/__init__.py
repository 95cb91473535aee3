"""Who may call the service: API keys with scopes and quotas."""
