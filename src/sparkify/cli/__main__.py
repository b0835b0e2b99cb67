"""``python -m sparkify.cli COMMAND``."""

from sparkify.cli import main

raise SystemExit(main())
