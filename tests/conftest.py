"""Test session set-up: split the CPU into two logical devices before TensorFlow
starts, so that tf.distribute tests can run two replicas on a machine without GPUs."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402  (the environment must be set first)

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])


def pytest_collection_modifyitems(config, items):
    # tf.test.TestCase carries a deprecated `test_session` method that pytest
    # collects and reports as skipped in every class; it is not a test.
    items[:] = [item for item in items if item.name != "test_session"]
