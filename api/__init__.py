"""User-facing interfaces: the command line (``api.cli``, commands in ``api.commands``) and the
HTTP server with its web page (``api.server``, ``vidsonar serve``)."""
