"""Any TFDS dataset with an image feature (``celeb_a``, ``mnist``, ``cifar10``, a built
``celeb_a_hq/<R>``, ...), read from ``data_dir``. Nothing is ever downloaded: a
dataset that is not prepared is a `DataError` within seconds, because TFDS itself
retries for minutes on a machine without internet."""

import os

from absl import logging
import numpy as np
import tensorflow as tf

from ogan_ign.data.common import FOLDER_HINT, DataError, Source
from ogan_ign.data.fit import fit_tensor


def import_tfds():
    try:
        import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise DataError(
            "TFDS datasets need tensorflow-datasets: pip install tensorflow-datasets; "
            + FOLDER_HINT) from None
    return tfds


class TfdsSource(Source):
    """A prepared TFDS split; each example's image goes through `fit_tensor`,
    undecodable examples are dropped. Held in memory (decoded once, on first use)
    when it fits the budget."""

    def __init__(self, spec, image_key, label_key):
        super().__init__(spec)
        self.image_key, self.label_key = image_key, label_key

    def _examples(self, *, shuffle=False, seed=0, shard=(1, 0)):
        """(uint8 image, int64 label) pairs; label 0 where the set has none."""
        tfds = import_tfds()
        spec = self.spec
        builder = tfds.builder(spec.name, data_dir=spec.location)
        read_config = tfds.ReadConfig(shuffle_seed=seed, try_autocache=False)
        ds = builder.as_dataset(split=spec.split, shuffle_files=shuffle,
                                read_config=read_config)
        if shard[0] > 1:
            ds = ds.shard(*shard)
        image_key, label_key = self.image_key, self.label_key
        ds = ds.map(lambda ex: (fit_tensor(ex[image_key], spec.image_size, spec.channels),
                                ex[label_key] if label_key else tf.zeros([], tf.int64)),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.ignore_errors()

    def _uint8_arrays(self, *, limit=None, **kwargs):
        ds = self._examples(**kwargs)
        if limit is not None:
            ds = ds.take(limit)
        images, labels = [], []
        for x, y in ds.batch(256).prefetch(2):
            images.append(x.numpy())
            labels.append(y.numpy())
        if not images:
            raise DataError(f"split {self.spec.split} of {self.spec.name} has no images")
        return np.concatenate(images), np.concatenate(labels).astype(np.int64)

    def arrays(self, limit=None):
        images, labels = self._uint8_arrays(limit=limit)
        return self.to_float(images), (labels if self.label_key else None)

    def stream(self, shard, *, shuffle, seed, memory_budget):
        if self.fits(shard[0], memory_budget):
            images = self._uint8_arrays(shuffle=shuffle, seed=seed, shard=shard)[0]
            return tf.data.Dataset.from_tensor_slices(images), True
        ds = self._examples(shuffle=shuffle, seed=seed, shard=shard)
        return ds.map(lambda x, y: x), False


def find(name, request):
    """The prepared TFDS dataset `name` (``celeb_a_hq`` → the config of the request's
    size) in request.data_dir."""
    data_dir = os.path.expanduser(request.data_dir) if request.data_dir else None
    tfds_builder = builder(name, data_dir, request.image_size)
    if not prepared(tfds_builder):
        raise DataError(_not_prepared_message(tfds_builder, _full_name(tfds_builder)))
    return source(tfds_builder, request)


def prepared(tfds_builder):
    """builder.is_prepared(), without TFDS's warning that the folder it looked in
    has no dataset_info.json (printed before our one-line error otherwise)."""
    quiet = lambda record: "dataset_info.json" not in record.getMessage()
    logger = logging.get_absl_logger()
    logger.addFilter(quiet)
    try:
        return tfds_builder.is_prepared()
    finally:
        logger.removeFilter(quiet)


def builder(name, data_dir, image_size):
    """TFDS's builder of `name`; for builders whose configs are resolutions
    (celeb_a_hq) and a name without one, the config of `image_size`."""
    tfds = import_tfds()
    try:
        found = tfds.builder(name, data_dir=data_dir)
        if "/" not in name:
            config = _config_for_size(found, image_size)
            if config and config != found.builder_config.name:
                found = tfds.builder(f"{name}/{config}", data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise DataError(
            f"unknown dataset {name!r}: no folder at that path, not fashion_mnist, and "
            "no TFDS dataset of that name (e.g. celeb_a_hq, celeb_a, mnist, cifar10)"
        ) from None
    except Exception as e:  # TFDS raises many types for bad configs; all are user errors.
        raise DataError(f"TFDS cannot open {name!r}: {_config_hint(tfds, name, e)}") from None
    return found


def source(tfds_builder, request):
    """The `TfdsSource` of a prepared builder."""
    tfds = import_tfds()
    full_name = _full_name(tfds_builder)
    image_key, native_channels = _image_feature(tfds, tfds_builder, full_name)
    features = tfds_builder.info.features
    label_key = ("label" if "label" in features
                 and isinstance(features["label"], tfds.features.ClassLabel) else None)
    try:
        num_examples = int(tfds_builder.info.splits[request.split].num_examples) or None
    except Exception:  # pylint: disable=broad-except  # unknown split sizes
        num_examples = None
    spec = request.spec(
        name=full_name, kind="tfds", channels=request.channels or (
            1 if native_channels == 1 else 3),
        num_examples=num_examples, location=str(tfds_builder.data_dir_root),
        labelled=label_key is not None)
    return TfdsSource(spec, image_key, label_key)


def _full_name(tfds_builder):
    config = tfds_builder.builder_config
    return tfds_builder.name + (f"/{config.name}" if config else "")


def _config_hint(tfds, name, error):
    """TFDS's own message for an unknown config spans lines; name the configs."""
    base, _, config = name.partition("/")
    try:
        configs = [c.name for c in (tfds.builder_cls(base).BUILDER_CONFIGS or [])]
    except Exception:  # pylint: disable=broad-except
        configs = []
    if config and configs and config not in configs:
        return f"no config {config!r}; it has {', '.join(configs)}"
    return str(error).splitlines()[0]


def _config_for_size(tfds_builder, image_size):
    """The config equal to the requested size, else the smallest larger one, else the
    largest; None when the configs are not resolutions."""
    names = [c.name for c in (tfds_builder.BUILDER_CONFIGS or [])]
    if not names or not all(n.isdigit() for n in names):
        return None
    sizes = sorted(int(n) for n in names)
    larger = [s for s in sizes if s >= image_size]
    return str(larger[0] if larger else sizes[-1])


def _not_prepared_message(tfds_builder, full_name):
    root = str(tfds_builder.data_dir_root)
    where = f"TFDS dataset {full_name} is not prepared: looked in {tfds_builder.data_dir}"
    build = f"`tfds build {full_name} --data_dir={root}` (needs pip install importlib_resources)"
    manual = os.path.join(root, "downloads", "manual") + os.sep
    if tfds_builder.name == "lsun":
        how = ("LSUN through TFDS needs tensorflow-io, which does not load on "
               "TensorFlow 2.21; export the LSUN images to a folder instead")
        return f"{where}; {how} and pass that folder as the dataset"
    if getattr(tfds_builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None):
        how = (f"it needs a manual download: put its files in {manual} (see the TFDS "
               f"catalog page for {tfds_builder.name}) and run {build}")
    else:
        how = (f"nothing is downloaded here; on a machine with internet run "
               f"`tfds build {full_name} --data_dir=DIR`, then copy DIR/{tfds_builder.name} "
               f"into {root}/")
    return f"{where}; {how}; {FOLDER_HINT}"


def _image_feature(tfds, tfds_builder, full_name):
    """The image feature: 'image' if present, else the first top-level Image."""
    features = tfds_builder.info.features
    images = {k: f for k, f in features.items() if isinstance(f, tfds.features.Image)}
    if not images:
        raise DataError(f"TFDS dataset {full_name} has no image feature")
    key = "image" if "image" in images else sorted(images)[0]
    shape = images[key].shape
    return key, (shape[-1] if shape and shape[-1] else 3)
