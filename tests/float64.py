"""float64 for the gradient tests, set and undone in one place.

Keras caches its global dtype policy from floatx at first use, so setting
floatx alone neither reaches new layers reliably nor is undone afterwards (a
float64 policy then leaks into later tests). This sets and restores both.
"""

import contextlib

import keras


@contextlib.contextmanager
def float64():
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy().name
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        yield
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)
