"""``python -m rmlc`` (and ``torchrun -m rmlc``) runs the command line."""

from rmlc.cli import main

raise SystemExit(main())
