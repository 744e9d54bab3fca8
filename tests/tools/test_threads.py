"""A worker's math libraries run one thread each, those loaded before the call and after."""

import json
import os
import subprocess
import sys
from pathlib import Path

THREADS = Path(__file__).resolve().parents[2] / "tools" / "threads.py"

PROBE = """
import json
import numpy
from threadpoolctl import threadpool_info
before = [p["num_threads"] for p in threadpool_info()]
import importlib.util, sys
# the module alone: importing sleuth.tools would load scipy first
spec = importlib.util.spec_from_file_location("threads", sys.argv[1])
threads = importlib.util.module_from_spec(spec)
spec.loader.exec_module(threads)
threads.one_math_thread()
loaded = len(threadpool_info())
import scipy.linalg  # brings its own BLAS (scipy's wheels), loaded after the call
after = [p["num_threads"] for p in threadpool_info()]
print(json.dumps({"before": before, "after": after, "loaded": loaded}))
"""


def test_one_math_thread_limits_libraries_loaded_before_and_after():
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    run = subprocess.run(
        [sys.executable, "-c", PROBE, str(THREADS)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    found = json.loads(run.stdout)
    if os.cpu_count() and os.cpu_count() > 1:
        assert max(found["before"]) > 1  # numpy starts a thread per core without the limit
    assert len(found["after"]) > found["loaded"]  # a library came after the call
    assert set(found["after"]) == {1}
