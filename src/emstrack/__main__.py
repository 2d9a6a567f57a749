"""``python -m emstrack`` is the ``emstrack`` command."""

from ._cli import main

main()
