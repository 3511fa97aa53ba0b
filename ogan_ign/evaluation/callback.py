"""Class coverage measured while a model trains."""

import json
import os

import keras
import numpy as np

from ogan_ign.evaluation.classifier import class_coverage


class CoverageCallback(keras.callbacks.Callback):
    """Class coverage of fresh samples every `every` steps, into a JSON-lines file.

    Measured twice: with BatchNorm's moving statistics (what `generate` returns)
    and with the batch's own statistics (what training sees); the two differ when
    the moving statistics misfit the noise.
    """

    def __init__(self, classifier, every, samples, seed, path):
        super().__init__()
        self.classifier, self.every, self.samples = classifier, every, samples
        self.seed, self.path = seed, path

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations)
        if step % self.every:
            return
        record = {"step": step}
        for key, training in (("moving_stats", False), ("batch_stats", True)):
            samples = np.asarray(self.model.generate(self.samples, seed=self.seed,
                                                     training=training), np.float32)
            coverage = class_coverage(self.classifier, samples)
            record[key] = {k: coverage[k] for k in ("classes_present", "max_share",
                                                    "effective_classes", "counts")}
        print(f"coverage at step {step}: " + "  ".join(
            f"{key} {record[key]['classes_present']} classes, max share "
            f"{record[key]['max_share']:.2f}" for key in ("moving_stats", "batch_stats")),
            flush=True)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
