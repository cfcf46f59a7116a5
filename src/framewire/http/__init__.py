"""HTTP application layer: routes, requests and responses, static files, uploads."""
