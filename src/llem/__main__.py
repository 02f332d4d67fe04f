"""``python -m llem``: the Hydra task app (one experiment, or a sweep with -m)."""

import sys

try:
    from llem.app import main
except KeyboardInterrupt:  # Ctrl-C while llem is still starting
    print("llem: interrupted (Ctrl-C)", file=sys.stderr)
    sys.exit(130)

main()
