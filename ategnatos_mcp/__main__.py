"""``python -m ategnatos_mcp`` is the same as the ``ategnatos-mcp`` command."""

from ategnatos_mcp.cli import main

raise SystemExit(main())
