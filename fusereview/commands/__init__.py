"""One module per ``fusereview`` subcommand: ``add_arguments(parser)`` and ``run(args) -> int``.

Modules here import only the standard library at import time; heavy imports happen inside ``run``.
"""
