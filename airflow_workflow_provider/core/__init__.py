"""The shared core: HTTP sending, retries, error mapping, states and models for every vendor."""
