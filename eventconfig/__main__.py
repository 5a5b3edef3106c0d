"""``python -m eventconfig`` is the ``eventconfig`` command."""

from eventconfig.cli.main import main

main()
