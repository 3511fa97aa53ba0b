"""A resolved source → what training and evaluation consume: a batched tf.data
pipeline, or whole arrays."""

import numpy as np
import tensorflow as tf

from ogan_ign.data.common import DEFAULT_MEMORY_BUDGET, SHUFFLE_BUFFER_BYTES, DataError


def make_dataset(spec, batch_size, *, shuffle=True, repeat=True, seed=0,
                 input_context=None, memory_budget=DEFAULT_MEMORY_BUDGET):
    """A tf.data.Dataset of float32 (batch, S, S, C) images in [-1, 1], from the
    `Source` that `resolve` returned.

    The uint8 images are held in memory when they take at most `memory_budget`
    bytes (folders and archives: as `resolve` decoded them; TFDS: decoded here, once);
    else a folder or archive is read from the cache `resolve` wrote (memory-mapped),
    or decoded again in every epoch when it has none, as TFDS is. Fashion-MNIST is
    always held in memory.
    With `shuffle`, the order is drawn from `seed`, a new one every epoch.

    input_context: a tf.distribute.InputContext (from
      `strategy.distribute_datasets_from_function`): this pipeline reads its own
      shard and batches by the per-replica batch size.
    """
    shard = (1, 0)
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
        shard = (input_context.num_input_pipelines, input_context.input_pipeline_id)
    if batch_size < 1:
        raise DataError(f"batch size must be at least 1, not {batch_size}")
    ds, held = spec.stream(shard, shuffle=shuffle, seed=seed, memory_budget=memory_budget)
    if shuffle and held:
        element_bytes = int(np.prod(ds.element_spec.shape))  # uint8 elements
        buffer = max(1, SHUFFLE_BUFFER_BYTES // element_bytes)
        if spec.num_examples:
            buffer = min(buffer, spec.num_examples)
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=True)
    ds = ds.map(spec.to_float, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def load_arrays(spec, limit=None):
    """(images, labels): float32 NHWC numpy in [-1, 1], in the source's order, and
    int64 labels for Fashion-MNIST / labelled TFDS sets (None otherwise). For
    evaluation and Fourier statistics; `limit` caps the number of images."""
    return spec.arrays(limit)
