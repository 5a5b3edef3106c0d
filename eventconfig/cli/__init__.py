"""The ``eventconfig`` command: one module per command group, all on top of the library."""
