"""``python -m llem``: the Hydra task app (one experiment, or a sweep with -m)."""

from llem.app import main

main()
