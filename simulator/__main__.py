"""``python -m simulator`` runs the servesim command line."""
from .cli import main

raise SystemExit(main())
