"""One forward pass of a network for two uses that want different gradients.

The single loss runs a critic twice over the same fakes: once for G's gradient
(the critic frozen) and once for the critic's (the fakes stop-gradiented); IGN
runs its outer f twice over f(z) the same way. `split_call` computes both from
one forward (`ogan_ign.losses` uses it in every model's loss).
"""

import keras
import tensorflow as tf


@tf.autograph.experimental.do_not_convert  # its Python loops converted fail under XLA
def split_call(net, inputs, training=True):
    """net(inputs), computed once and returned twice, (to_inputs, to_weights):
    the same value, the first's gradient reaching `inputs` only (what a frozen
    copy of `net` would give), the second's reaching net's trainable weights
    only (what net(sg inputs) would give).

    The single loss runs a critic twice on the same fakes: D′(G) for G's
    gradient and D(sg G) for the critic's. Both have one value; only their
    gradients differ, and a gradient is linear in what flows into it. So the
    forward runs once (statelessly, under a tape) and the backward takes two
    partial passes through it: g_in·∂net/∂inputs and g_w·∂net/∂weights, g_in and
    g_w what flows into either output. Neither computes the other's gradient: a
    tf.function drops them. BatchNorm statistics move once, as in one
    net(inputs); with training=True the layers normalise by the batch's own
    statistics, as both calls did."""
    weights, state = net.trainable_variables, net.non_trainable_variables
    state_values = [v.value for v in state]

    @tf.custom_gradient
    def call(x, *weight_values):
        mapping = list(zip(weights, weight_values)) + list(zip(state, state_values))
        with tf.GradientTape(persistent=True, watch_accessed_variables=False) as tape:
            tape.watch(x)
            tape.watch(weight_values)
            with keras.StatelessScope(state_mapping=mapping) as scope:
                y = net(x, training=training)
                new_state = [scope.get_current_value(v) for v in state]

        def gradient(to_inputs, to_weights, *unused_state):
            dx = (None if to_inputs is None
                  else tape.gradient(y, x, output_gradients=to_inputs))
            dw = ([None] * len(weight_values) if to_weights is None
                  else tape.gradient(y, list(weight_values), output_gradients=to_weights))
            return (dx, *dw)
        return (y, tf.identity(y), *new_state), gradient

    outputs = call(inputs, *[v.value for v in weights])
    for v, value in zip(state, outputs[2:]):
        v.assign(value)
    return outputs[0], outputs[1]
