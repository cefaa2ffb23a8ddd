"""CLI command modules. Each module defines ``register(main)`` adding its commands to the
``vidsonar`` group; ``api.cli`` calls every module here, so a new command is a new file.
Keep heavy imports inside the command functions: every module is imported at start-up."""
