"""`make bench`: run every benchmark in bench/, each printing its figures and a last
line of key=value pairs."""
from __future__ import annotations

import subprocess
import sys

BENCHMARKS = ["bench.registry_search", "bench.newsletter_send", "bench.concerns_load",
              "bench.page_speed", "bench.import_csv"]


def main() -> int:
    code = 0
    for module in BENCHMARKS:
        print(f"== {module}", flush=True)
        code |= subprocess.call([sys.executable, "-m", module, *sys.argv[1:]])
    return code


if __name__ == "__main__":
    sys.exit(main())
