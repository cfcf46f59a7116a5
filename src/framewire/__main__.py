"""``python -m framewire``: the same as the ``framewire`` command."""

from framewire.cli import main

raise SystemExit(main())
