"""Where each server provider listens unless `base_url` says otherwise."""

SERVER_DEFAULT_URLS = {"ollama": "http://localhost:11434", "openai": "https://api.openai.com/v1"}
