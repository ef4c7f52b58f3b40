"""Build the native kernels ahead of time: ``python -m qkan.simulators.native --build [--force]``."""

from __future__ import annotations

import argparse

from qkan.simulators import native


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m qkan.simulators.native", description=__doc__)
    parser.add_argument("--build", action="store_true", help="compile the kernel into the cache (if not there yet)")
    parser.add_argument("--force", action="store_true", help="recompile even when the cached library exists")
    args = parser.parse_args(argv)
    if args.build or args.force:
        print(native.build(force=args.force))
    else:
        print(native.library_path() if native.available() else f"unavailable: {native.unavailable_reason()}")


if __name__ == "__main__":
    main()
