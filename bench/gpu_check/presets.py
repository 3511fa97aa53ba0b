"""The sizes and steps of the two modes: `full`, sized for about ten minutes on
one GPU, and `quick`, every code path once with tiny settings (what the tests
run; docs/GPU.md gives its cost on a CPU)."""

import dataclasses

MODELS = ("gan", "ogan", "ign")
NAMES = {"gan": "SingleLossGAN", "ogan": "O-GAN", "ign": "IGN"}


@dataclasses.dataclass(frozen=True)
class Preset:
    """Sizes and steps of one mode."""

    check_net: str              # "conv" (the library's DCGAN builders) or "dense"
    check_size: int             # image side of the conv check nets
    check_width: int
    check_batch: int            # global batch of the equality step (half per replica)
    precision_steps: int
    speed_sizes: tuple
    speed_batch: int            # per replica
    speed_steps: int            # timed steps per round
    speed_rounds: int
    speed_seconds: float        # (model, size) groups not started by then are skipped
    speed_grid: tuple           # (model, "one" | "all", xla, precision | "auto" | "half")
    matmul_n: int
    determinism_models: tuple
    determinism_size: int
    resume_steps: int
    resume_width: int
    resume_batch: int
    train_steps: int
    train_args: tuple
    mismatch: float = 0.0       # added to every equality reference: the check must fail


def full_grid():
    """One device: XLA off at fp32, bf16 and fp16, XLA on at fp32 and at the
    16-bit type the device has natively ("half": bf16 where --mixed_precision
    auto picks it, else fp16); all devices: XLA off and on at the auto precision."""
    one = [(m, "one", x, p) for m in MODELS
           for x, p in (("off", "fp32"), ("off", "bf16"), ("off", "fp16"), ("on", "fp32"),
                        ("on", "half"))]
    return tuple(one + [(m, "all", x, "auto") for m in MODELS for x in ("off", "on")])


PRESETS = {
    "full": Preset(check_net="conv", check_size=32, check_width=4, check_batch=8,
                   precision_steps=5, speed_sizes=(64, 128), speed_batch=64, speed_steps=10,
                   speed_rounds=3, speed_seconds=300.0, speed_grid=full_grid(), matmul_n=4096,
                   determinism_models=MODELS, determinism_size=64, resume_steps=20,
                   resume_width=64, resume_batch=64, train_steps=300, train_args=()),
    # Dense nets for the equality and precision checks; SingleLossGAN's speed rows
    # only, 32 px, batch 2, XLA off (an XLA compile of a DCGAN step is slow on a
    # CPU; XLA over two replicas is in the equality checks); a 5-step train_ign
    # run at width 2.
    "quick": Preset(check_net="dense", check_size=28, check_width=2, check_batch=8,
                    precision_steps=2, speed_sizes=(32,), speed_batch=2, speed_steps=1,
                    speed_rounds=2, speed_seconds=120.0,
                    speed_grid=(("gan", "one", "off", "fp32"), ("gan", "one", "off", "fp16"),
                                ("gan", "all", "off", "auto")),
                    matmul_n=256, determinism_models=("gan",), determinism_size=32,
                    resume_steps=4, resume_width=2, resume_batch=8, train_steps=5,
                    train_args=("--width=2", "--latent=8", "--coverage_samples=0",
                                "--fourier_examples=256", "--num_samples=8", "--log_every=5")),
}
