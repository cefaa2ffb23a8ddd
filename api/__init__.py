"""User-facing interfaces: the command line (``api.cli``) and, later, the HTTP server."""
