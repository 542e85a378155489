"""``python -m rewardkit.cli ...`` (what ``torchrun -m rewardkit.cli`` runs)."""

from __future__ import annotations

from rewardkit.cli.main import main

raise SystemExit(main())
