"""PyTorch twins of ogan_ign's DCGAN networks and of its default training step,
for bench/bench_torch.py (which checks them equal before it times them).
Imports torch: run it in .venv-torch (bench/torch/setup.sh), never from tests.

Networks (`twin(keras_net)`): the same layers in the same order as
`networks.dcgan_encoder`, `dcgan_generator` and `dcgan_autoencoder` (norm
"batch", code "dense") build them, named like the Keras layers, NCHW tensors in
channels-last memory. What makes the two equal:

* Keras's SAME padding. A stride-s convolution of an S×S map (s divides S) pads
  k − s pixels in all, ⌊(k − s)/2⌋ before and the rest after: asymmetric for
  k = 5, s = 2 (1 before, 2 after), which `KerasConv2d` pads itself. Its
  transpose (Keras's Conv2DTranspose "same") is the adjoint of that
  convolution on the s·S' map: torch's ConvTranspose2d with padding = the
  "before" pad crops that much at each end, so `KerasConvTranspose2d` drops
  the (after − before) rows and columns still left at the end.
* Keras flattens NHWC maps as (h, w, c) and reshapes Dense outputs to
  (h, w, c): the twins permute to NHWC before Flatten and back after Reshape.
* Keras's BatchNormalization: ε = 1e-3, moving average with momentum 0.99
  (torch's momentum 0.01). Training normalises by the biased batch variance in
  both; torch's running variance is updated with the unbiased one, Keras's
  with the biased one (it changes no loss or gradient of a training step).
* The generator's last activation, tanh, in float32 as Keras's (floatx) layer;
  LeakyReLU's slope 0.2 rounded to float32, as TensorFlow's op holds it.

`copy_weights(keras_net, module)` copies every weight (kernel layouts
transposed: conv (kh, kw, in, out) → (out, in, kh, kw), transposed conv
(kh, kw, out, in) → (in, out, kh, kw), dense (in, out) → (out, in));
`weight_pairs` gives the same correspondence for comparing gradients.

The step (`TorchStep`): the models' default single loss, as losses.OGANLoss
(objective wgan, GAN-QP weight 1, λ = 0.5; `GANLoss` the same without ρ) and
losses.IGNLoss (λ_rec = λ_idem = 20, λ_tight = 2.5, clamp a = 1.5, L1) compute
it, stop-gradients where those have them, one optimizer over all weights with
the model's default hyper-parameters (O-GAN and GAN: RMSprop(1e-4, ρ = 0.99);
IGN: Adam(1e-4, β = (0.5, 0.999)); Keras's ε = 1e-7), noise drawn each step,
bf16 as torch.autocast("cpu", bfloat16) (Keras's mixed_bfloat16: float32
weights, bfloat16 convolutions, float32 loss). The Keras step also averages its
logged terms in Mean trackers; the twin step returns the loss only.
"""

import keras
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# Keras's BatchNormalization defaults (ogan_ign's networks keep them).
BN_EPSILON, BN_MOMENTUM = 1e-3, 0.99


def same_pads(kernel_size, stride):
    """(before, after): Keras's SAME padding of a stride-`stride` convolution on a
    map whose side `stride` divides."""
    total = max(kernel_size - stride, 0)
    return total // 2, total - total // 2


class KerasConv2d(nn.Conv2d):
    """Conv2D(filters, k, strides=s, padding="same") of Keras: pads ⌊(k − s)/2⌋
    before and the rest after, itself when the two differ."""

    def __init__(self, c_in, c_out, kernel_size, stride, bias):
        before, after = same_pads(kernel_size, stride)
        super().__init__(c_in, c_out, kernel_size, stride,
                         padding=before if before == after else 0, bias=bias)
        self.extra_pads = None if before == after else (before, after) * 2

    def forward(self, x):
        if self.extra_pads is not None:
            x = F.pad(x, self.extra_pads)
        return super().forward(x)


class KerasConvTranspose2d(nn.ConvTranspose2d):
    """Conv2DTranspose(filters, k, strides=s, padding="same") of Keras: s·S' out.

    Torch crops `padding` at both ends of the full (S' − 1)·s + k output; Keras
    crops `before` at the start and `after` (≥ before) at the end: the surplus
    at the end is sliced off."""

    def __init__(self, c_in, c_out, kernel_size, stride, bias):
        before, after = same_pads(kernel_size, stride)
        super().__init__(c_in, c_out, kernel_size, stride, padding=before, bias=bias)
        self.surplus = after - before

    def forward(self, x):
        y = super().forward(x)
        if self.surplus:
            y = y[:, :, :-self.surplus, :-self.surplus]
        return y


def keras_batchnorm(channels):
    return nn.BatchNorm2d(channels, eps=BN_EPSILON, momentum=1.0 - BN_MOMENTUM)


class ToNHWCFlat(nn.Module):
    """Keras's Flatten of an NHWC map: (n, c, h, w) → (n, h·w·c) in (h, w, c) order."""

    def forward(self, x):
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)


class FromNHWCFlat(nn.Module):
    """Keras's Reshape((h, w, c)) of a flat vector, as an NCHW (channels-last) map."""

    def __init__(self, side, channels):
        super().__init__()
        self.shape = (side, side, channels)

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape).permute(0, 3, 1, 2)


class Float32Tanh(nn.Module):
    """tanh in float32, as the networks' last Keras layer (dtype floatx) computes it."""

    def forward(self, x):
        return torch.tanh(x.float() if x.dtype in (torch.bfloat16, torch.float16) else x)


# ---------------------------------------------------------------- twins
def _layer_twin(layer, in_channels):
    """The torch module of one Keras layer of the DCGAN networks; a one-line
    ValueError for a layer it does not know."""
    kind = type(layer).__name__
    if kind in ("Conv2D", "Conv2DTranspose"):
        (k, k2), (s, s2) = layer.kernel_size, layer.strides
        if k != k2 or s != s2 or layer.padding != "same":
            raise ValueError(f"{layer.name}: only square kernels, strides and SAME padding")
        cls = KerasConv2d if kind == "Conv2D" else KerasConvTranspose2d
        return cls(in_channels, layer.filters, k, s, layer.use_bias)
    if kind == "Dense":
        return nn.Linear(layer.kernel.shape[0], layer.units, bias=layer.use_bias)
    if kind == "BatchNormalization":
        if layer.epsilon != BN_EPSILON or layer.momentum != BN_MOMENTUM:
            raise ValueError(f"{layer.name}: BatchNorm ε/momentum differ from Keras's defaults")
        return keras_batchnorm(layer.gamma.shape[0])
    if kind == "LeakyReLU":
        # TensorFlow's LeakyRelu takes its slope as a float32 attribute, in float64 too.
        return nn.LeakyReLU(float(np.float32(layer.negative_slope)))
    if kind == "ReLU":
        return nn.ReLU()
    if kind == "Activation" and layer.get_config()["activation"] == "tanh":
        return Float32Tanh()
    if kind == "Flatten":
        return ToNHWCFlat()
    if kind == "Reshape":
        side, _, channels = layer.target_shape
        return FromNHWCFlat(side, channels)
    raise ValueError(f"no torch twin for Keras layer {layer.name} ({kind})")


class Twin(nn.Module):
    """A Keras functional chain (each layer feeds the next) as torch modules run
    in the same order, each under its Keras layer's name."""

    def __init__(self, keras_net):
        super().__init__()
        self.chain = nn.ModuleDict()
        for layer in keras_net.layers:
            if not isinstance(layer, keras.layers.InputLayer):
                self.chain[layer.name] = _layer_twin(layer, layer.input.shape[-1])

    def forward(self, x):
        for module in self.chain.values():
            x = module(x)
        return x


def twin(keras_net, dtype=torch.float32):
    """The torch twin of a built Keras DCGAN net, in channels-last memory, with
    the Keras net's weights (`copy_weights`) in `dtype`. Images go in and out as
    NCHW tensors (`to_torch_images` makes them from NHWC arrays)."""
    module = Twin(keras_net).to(dtype=dtype, memory_format=torch.channels_last)
    copy_weights(keras_net, module)
    return module


def to_torch_images(x, dtype=torch.float32):
    """An NHWC array or tensor → an NCHW torch tensor in channels-last memory."""
    x = torch.as_tensor(np.asarray(x), dtype=dtype)
    return x.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)


def _kernel_to_torch(array):
    """A Keras kernel → torch's layout: conv (kh, kw, in, out) → (out, in, kh, kw),
    transposed conv (kh, kw, out, in) → (in, out, kh, kw), dense (in, out) → (out, in)."""
    return array.transpose(3, 2, 0, 1) if array.ndim == 4 else array.T


# Keras's BatchNormalization weights under torch's names.
_BN_NAMES = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
             "moving_variance": "running_var"}


def weight_pairs(keras_net, module):
    """[(Keras variable, torch tensor of the same weight, Keras→torch layout)],
    every weight of the net once, trainable and moving statistics alike."""
    pairs = []
    for layer in keras_net.layers:
        if not layer.weights:
            continue
        target = module.chain[layer.name]
        for variable in layer.weights:
            name = variable.path.split("/")[-1]
            if name == "kernel":
                pairs.append((variable, target.weight, _kernel_to_torch))
            elif name == "bias":
                pairs.append((variable, target.bias, np.asarray))
            else:
                pairs.append((variable, getattr(target, _BN_NAMES[name]), np.asarray))
    return pairs


@torch.no_grad()
def copy_weights(keras_net, module):
    """Copies each Keras weight into its torch twin (`weight_pairs`), in the
    torch tensor's dtype and memory format."""
    for variable, tensor, layout in weight_pairs(keras_net, module):
        value = torch.as_tensor(np.ascontiguousarray(layout(keras.ops.convert_to_numpy(variable))))
        if tuple(value.shape) != tuple(tensor.shape):
            raise ValueError(f"{variable.path}: Keras {tuple(value.shape)} vs torch "
                             f"{tuple(tensor.shape)}")
        tensor.copy_(value.to(tensor.dtype))


# ------------------------------------------------------------------ step
def critic_score(outputs):
    """D(x) = avg(outputs) over all but the batch axis, in float32 at least
    (losses.critic_score)."""
    if outputs.dtype in (torch.bfloat16, torch.float16):
        outputs = outputs.float()
    return outputs.reshape(outputs.shape[0], -1).mean(-1)


def pearson(a, b):
    """ρ(a, b) over the last axis: centre, l2-normalise (as tf.math.l2_normalize,
    x / √max(Σx², 1e-12)), dot (losses.pearson)."""
    a = a - a.mean(-1, keepdim=True)
    b = b - b.mean(-1, keepdim=True)
    a = a * torch.rsqrt(torch.clamp((a * a).sum(-1, keepdim=True), min=1e-12))
    b = b * torch.rsqrt(torch.clamp((b * b).sum(-1, keepdim=True), min=1e-12))
    return (a * b).sum(-1)


class _Split(torch.autograd.Function):
    """split_pass.split_call in torch: one forward of `net`, two partial backwards."""

    @staticmethod
    def forward(ctx, net, x, *weights):
        names = [name for name, _ in net.named_parameters()]
        with torch.enable_grad():
            ctx.x = x.detach().requires_grad_()
            ctx.weights = [w.detach().requires_grad_() for w in weights]
            ctx.y = torch.func.functional_call(net, dict(zip(names, ctx.weights)), (ctx.x,))
        return ctx.y.detach(), ctx.y.detach().clone()

    @staticmethod
    def backward(ctx, to_inputs, to_weights):
        dx = torch.autograd.grad(ctx.y, ctx.x, to_inputs, retain_graph=True)[0]
        dw = torch.autograd.grad(ctx.y, ctx.weights, to_weights)
        return (None, dx, *dw)


def split(net, x):
    """net(x) once, returned twice (split_pass.split_call): the first's gradient
    reaches x only, the second's the weights only; BatchNorm statistics move once."""
    return _Split.apply(net, x, *net.parameters())


def frozen(net, x):
    """net(x) with its weights detached: the gradient reaches x only."""
    weights = {name: p.detach() for name, p in net.named_parameters()}
    return torch.func.functional_call(net, weights, (x,))


PASSES = ("split", "separate")


def critic_pair(net, x, passes="split"):
    """(net′(x), reaching x only; net(sg x), reaching the weights only): one
    forward as the project's step runs it ("split"), or two ("separate": a
    frozen copy and a pass on x.detach(), the paper's form, as a PyTorch user
    would write it). The same values and gradients either way."""
    if passes == "split":
        return split(net, x)
    if passes == "separate":
        return frozen(net, x), net(x.detach())
    raise ValueError(f"unknown passes {passes!r}; expected one of {PASSES}")


def ogan_loss(generator, critic, x_real, z, corr_weight=0.5, penalty_weight=1.0,
              passes="split"):
    """losses.OGANLoss with its defaults (wgan, GAN-QP), GANLoss's with corr_weight 0:

        L = mean(D(x) − 2·D(sg G(z)) + D(G(z))) + w·mean(0.25·t1² / mean_pixels((x − sg G)²))
            − λ·mean ρ(z, E(G(z))),     t1 = D(x) − D(sg G(z)),  D = avg(E(·))

    as the project's step computes it: D(G(z)) by the critic with its weights
    frozen, its pair D′(G) − sg D′(G), and ρ in two halves, E's on E(sg G(z)) and
    G's on E′(G(z)), the critic's two passes over G(z) one (`split`) — the same
    work on both sides; passes="separate" runs them as two (`critic_pair`)."""
    x_fake = generator(z)
    x_fake_sg = x_fake.detach()  # the critic's fakes: no gradient reaches G
    e_real = critic(x_real)
    e_fake, e_fake_sg = critic_pair(critic, x_fake, passes)
    d_real, d_fake, d_fake_sg = (critic_score(e) for e in (e_real, e_fake, e_fake_sg))
    single = ((d_real - d_fake_sg) + (d_fake - d_fake.detach())).mean()
    t1 = d_real - d_fake_sg
    pixel_mse = (x_real.to(t1.dtype) - x_fake_sg.to(t1.dtype)).square().mean((1, 2, 3))
    total = single + penalty_weight * (0.25 * t1.square() / pixel_mse).mean()
    if corr_weight:
        z = z.to(t1.dtype)
        rho_generator = pearson(z, e_fake.to(t1.dtype)).mean()
        rho = pearson(z, e_fake_sg.to(t1.dtype)).mean() + rho_generator - rho_generator.detach()
        total = total - corr_weight * rho
    return total


def gan_loss(generator, critic, x_real, z, passes="split"):
    """losses.GANLoss with its defaults: O-GAN's loss without the ρ term."""
    return ogan_loss(generator, critic, x_real, z, corr_weight=0.0, passes=passes)


def l1_distance(a, b):
    """distances.ign_distance "l1", per sample: mean over pixels of |a − b|."""
    return (a - b).abs().reshape(a.shape[0], -1).mean(-1)


def ign_loss(f, x_real, z, lambda_rec=20.0, lambda_idem=20.0, lambda_tight=2.5, clamp=1.5,
             passes="split"):
    """losses.IGNLoss with its defaults, δ(y) = l1(f(y), y):

        L = λ_rec·δ(x) + λ_idem·(δ′(f(z)) − sg δ′(f(z))) + λ_tight·clamp(−δ(sg f(z))),
        clamp(t) = tanh(t / (a·sg L_rec))·a·sg L_rec,   L_rec = mean δ(x)

    δ′: the outer f with its weights frozen; f(f(z)) runs once for δ′ and
    δ(sg f(z)) (`split`), as the project's step computes it: the same work on
    both sides; passes="separate" runs the outer f twice (`critic_pair`)."""
    f_x = f(x_real)
    f_z = f(z)
    f_z_sg = f_z.detach()  # the fakes as the critic sees them: the inner f frozen
    ff_z, ff_z_sg = critic_pair(f, f_z, passes)  # the outer f frozen, and on sg f(z)
    x_real, z = x_real.to(f_x.dtype), z.to(f_x.dtype)
    delta_real = l1_distance(f_x, x_real)
    delta_fake = l1_distance(ff_z, f_z)
    delta_fake_sg = l1_distance(ff_z_sg, f_z_sg)
    scale = clamp * delta_real.mean().detach()
    l_tight = torch.tanh(-delta_fake_sg / scale) * scale
    return (lambda_rec * delta_real.mean() + lambda_idem * (delta_fake - delta_fake.detach()).mean()
            + lambda_tight * l_tight.mean())


LOSSES = {"gan": gan_loss, "ogan": ogan_loss, "ign": ign_loss}


def default_optimizer(kind, parameters):
    """The model's default optimizer in torch (Keras's ε = 1e-7): RMSprop(1e-4,
    ρ = 0.99) for the GAN and O-GAN (the original O-GAN code's), Adam(1e-4,
    β = (0.5, 0.999)) for IGN (the paper's); torch's multi-tensor path."""
    if kind == "ign":
        return torch.optim.Adam(parameters, lr=1e-4, betas=(0.5, 0.999), eps=1e-7, foreach=True)
    return torch.optim.RMSprop(parameters, lr=1e-4, alpha=0.99, eps=1e-7, foreach=True)


class TorchStep:
    """One training step of a model's twins `nets` (in the order of the Keras
    model's `nets`): fresh N(0, I) noise of `noise_shape` (batch axis excluded;
    image noise (h, w, c) goes in channels-last), the single loss under
    autocast(cpu, bfloat16) for precision "bf16", one backward, one optimizer
    step over every weight; `passes` as in `critic_pair`. Calling it on a batch
    returns the loss (detached)."""

    def __init__(self, kind, nets, noise_shape, precision, passes="split"):
        self.kind, self.nets, self.noise_shape = kind, list(nets), tuple(noise_shape)
        self.passes = passes
        self.bf16 = {"fp32": False, "bf16": True}[precision]
        for net in self.nets:
            net.train()
        self.optimizer = default_optimizer(
            kind, [p for net in self.nets for p in net.parameters()])

    def noise(self, batch_size):
        z = torch.randn((batch_size,) + self.noise_shape)
        return z.permute(0, 3, 1, 2) if z.dim() == 4 else z

    def __call__(self, x_real):
        z = self.noise(x_real.shape[0])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            total = LOSSES[self.kind](*self.nets, x_real, z, passes=self.passes)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        return total.detach()
