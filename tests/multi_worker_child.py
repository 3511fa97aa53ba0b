"""One worker of tests/test_distribute.py's MultiWorkerTest (not a test itself).

Reads TF_CONFIG, trains the tiny float64 SingleLossGAN of test_distribute for
MULTI_WORKER_STEPS steps with MultiWorkerMirroredStrategy, XLA off and then on,
and — on the chief only — writes both sets of weights to the .npz path given.

    TF_CONFIG='{"cluster": {...}, "task": {...}}' python tests/multi_worker_child.py out.npz
"""

import os
import sys

import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_distribute as td  # noqa: E402  (its tiny models and data)

from ogan_ign import training  # noqa: E402


def main(path):
    keras.config.disable_traceback_filtering()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    x, z = td.batch("gan", n=td.BATCH * td.MULTI_WORKER_STEPS)
    arrays, finite = {}, True
    for tag, jit_compile in (("off", False), ("on", True)):
        with strategy.scope():
            model = td.build("gan")
            model.compile(optimizer=keras.optimizers.SGD(td.LR), jit_compile=jit_compile)
        logs = model.fit(td.dataset(x, z), epochs=1, verbose=0, shuffle=False).history
        finite &= bool(np.all(np.isfinite(np.asarray(logs["loss/total"], np.float64))))
        for i, w in enumerate(model.get_weights()):  # every worker reads (may be collective)
            arrays[f"{tag}_{i}"] = np.asarray(w)
    if training.is_chief(strategy):
        np.savez(path, logs_finite=finite, **arrays)


if __name__ == "__main__":
    main(sys.argv[1])
