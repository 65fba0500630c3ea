"""``python -m calibration --out DIR [--device cuda|cpu] [--quick] [--name GPU] [--only KINDS]``."""
import sys

from simulator.calibration.suite import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
