"""``servesim calibrate``: measure kernels on this machine's GPU, or fit profiles from measurements.

    servesim calibrate --out DIR [--device cuda|cpu] [--quick] [--name GPU]   (needs the calibrate extra;
                                                                              ends by writing DIR/<name>.yaml)
    servesim calibrate fit DIR [--name GPU] [--like GPU]                      (refit a folder, no measuring)
    servesim calibrate fit --write | --check                                  (the package's own hwprofiles)
"""
from __future__ import annotations

import argparse

from .registry import subcommand


@subcommand
def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="measure GPU kernels (needs torch) or fit profiles from measurements",
                       add_help=False)
    p.set_defaults(handler=run, pass_through=True)


def run(a: argparse.Namespace) -> int:
    args = list(getattr(a, "args", []))
    if args and args[0] == "fit" and len(args) > 1 and not args[1].startswith("-"):
        from simulator.calibration.user_profile import main as user_fit_main

        return user_fit_main(args[1:])
    if args and args[0] == "fit":
        from simulator.calibration.profiles import main as fit_main

        return fit_main(args[1:])
    from simulator.calibration.suite import main as suite_main

    return suite_main(args)
