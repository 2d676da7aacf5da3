"""The confirmer's web panel: server-rendered pages over the same services as the API."""
