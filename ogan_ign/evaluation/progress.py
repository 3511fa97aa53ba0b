"""Progress lines for the long steps of an evaluation."""

import contextlib
import time


@contextlib.contextmanager
def announced(what, verbose=True):
    """Says what is being computed before it starts and how long it took after,
    so that no long computation is silent."""
    start = time.perf_counter()
    if verbose:
        print(f"{what} ...", flush=True)
    yield
    if verbose:
        print(f"  done in {time.perf_counter() - start:.1f} s", flush=True)
