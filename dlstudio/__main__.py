"""``python -m dlstudio``: the same as the ``dlstudio`` command."""

from __future__ import annotations

from dlstudio.cli import main

raise SystemExit(main())
