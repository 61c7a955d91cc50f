"""One module per chain link (and the token refresh). Task bodies are thin."""
