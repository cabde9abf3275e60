"""Brian2 equations of the rate-based GLE microcircuit (``--engine brian2``).

This file is the one place where the Brian2 engine's GLE update lives
(``cortical_gle/engines/brian2_/`` only creates, connects, schedules and reads back).
It holds docs/model.md#continuous-model (the two units and plasticity) in the discrete
form of docs/model.md#discrete-time, mapped onto docs/model.md#microcircuit-mapping:

``PYRAMIDAL``
    One ``NeuronGroup`` per layer (every neuron once per batch sample), three compartments:
    basal dendrite (bottom-up ``I_basal = W r_{l-1}`` plus bias ``b``), apical dendrite
    (the paired error neuron's output ``err``, nudging the soma by ``gamma err``) and soma
    (``u``, ``tau_m``); the output rate is ``phi(u_pro)``, ``u_pro = u + tau_r du/dt``.
``ERROR``
    One ``NeuronGroup`` per layer, paired one-to-one with the pyramidal cells: membrane
    constant ``tau_r``, prospective gain ``tau_m``, driven by ``top`` (``B^T e`` of the layer
    above through the feedback synapses, or the loss term at the output), gain-modulated by
    the paired pyramidal cell's ``phi'(u_pro)``.
``FORWARD`` / ``FEEDBACK``
    Bottom-up synapses onto the basal dendrites and top-down synapses between error neurons;
    both read the one weight ``W[post, pre]`` of a weight holder, so ``B = W^T`` exactly.
``WEIGHT_HOLDER`` / ``PARAM_HOLDER`` / ``*_GRADIENT``
    Plasticity: collector synapses sum the local products ``err_post r_pre`` (and ``err``,
    ``err du/dt`` at the neuron) over the batch replicas, so every weight sees the batch-mean
    gradient of the numpy engine; ``sgd``/``adam`` apply it after every step.

Units: time constants are in ``second`` (the spec's time unit converted once); potentials,
rates and errors are dimensionless.  Update code is explicit forward Euler (docs/model.md#discrete-time),
executed with ``run_regularly``; the engine sets the slots (``when``/``order``) listed in
docs/brian2.md so that every value is read after it is produced and before it is replaced.
Names: ``err`` is the prospective error ``e`` (``e`` is Euler's number in Brian2).
"""

# -- input layer: r_0 = x(t), read from the run's input table ------------------------------------
INPUT = """
r : 1                               # input rate x(t)
k_step : integer (shared)           # steps done in this run: the row of the input table
n_cols : integer (shared, constant) # batch * n_in
"""
INPUT_UPDATE = "r = x_table(k_step*n_cols + i)"            # slot 'start'
INPUT_ADVANCE = "k_step = k_step + 1"                       # slot 'end'

# -- pyramidal cell: docs/model.md#discrete-time, representation unit ---------------------------
PYRAMIDAL = """
u : 1                               # soma potential
I_basal : 1                         # basal dendrite: W r_{l-1}, summed by the forward synapses
err : 1 (linked)                    # apical dendrite: the paired error neuron's prospective error
b : 1 (linked)                      # bias (basal dendrite), from the layer's parameter holder
tau_m : second (linked)             # membrane time constant of the soma
tau_r : second (linked)             # prospective time constant of the output rate
gamma : 1 (shared, constant)        # apical nudging strength
du : Hz                             # du/dt of the last step (tau_m plasticity)
u_pro : 1                           # prospective potential u + tau_r du/dt
r : 1                               # output rate phi(u_pro), committed at the end of the step
rp : 1                              # phi'(u_pro), committed at the end of the step
r_next : 1                          # this step's rate, before the commit
rp_next : 1
k_step : integer (linked)           # steps done in this run (the input table's row)
diverged_at : integer               # 1 + the step of this run at which u_pro was first non-finite; 0: not yet
"""
#: ``diverged_at`` marks a divergence at its step, as the numpy engine stops at it (NaN fails ``<``)
PYRAMIDAL_UPDATE = """
du = (I_basal + b + gamma*err - u)/tau_m
u_pro = u + tau_r*du
diverged_at = diverged_at + int(diverged_at == 0 and not (abs(u_pro) < inf))*(k_step + 1)
u = u + dt*du
r_next = {phi}
rp_next = {phi_prime}
"""
#: one commit for every layer in slot 'end': all layers advance from the previous step's rates
PYRAMIDAL_COMMIT = """
r = r_next
rp = rp_next
"""

#: transfer functions of cortical_gle/phi.py as Brian2 expressions (``x``: the prospective potential,
#: ``r``: phi(x) already computed); written as the numpy engine evaluates them
PHI = {
    "tanh": ("tanh(x)", "1 - r*r"),
    "linear": ("x", "1.0"),
    "sigmoid": ("1/(1 + exp(-x))", "r*(1 - r)"),
    "softplus": ("clip(x, 0, inf) + log1p(exp(-abs(x)))", "1/(1 + exp(-x))"),   # numpy's logaddexp(0, x)
    "relu": ("clip(x, 0, inf)", "int(x > 0)"),
}

# -- error neuron: docs/model.md#discrete-time, error unit ----------------------------------------
ERROR = """
v : 1                               # error-neuron potential (membrane constant tau_r)
err : 1                             # prospective error e = v + tau_m dv/dt, sent to the apical dendrite
top : 1                             # top-down input B^T e_{l+1} (summed by the feedback synapses) or loss term
rp : 1 (linked)                     # phi'(u_pro) of the paired pyramidal cell (gain modulation)
tau_m : second (linked)
tau_r : second (linked)
"""
#: output layer only: top = beta (y(t) - r_L(t)), the negative MSE gradient (docs/model.md#continuous-model)
ERROR_OUTPUT = """
r_soma : 1 (linked)                 # committed output rate of the paired pyramidal cell
k_step : integer (linked)           # row of the target table
beta : 1 (shared, constant)
has_target : 1 (shared)             # 0 when the run has no target: no error enters
n_cols : integer (shared, constant) # batch * n_out
"""
ERROR_OUTPUT_TOP = "top = beta*(y_table(k_step*n_cols + i) - r_soma)*has_target"
ERROR_UPDATE = {
    True: """
inst = top*rp
dv = (inst - v)/tau_r
err = v + tau_m*dv
v = v + dt*dv
""",
    False: "err = top*rp",      # prospective errors off: the instantaneous gated error
}

# -- synapses -----------------------------------------------------------------------------------
FORWARD = """
w : 1 (linked)                      # W[post, pre], read from the weight holder
k_w : integer (constant)            # the holder entry post*n_pre + pre
I_basal_post = w*r_pre : 1 (summed)
"""
FEEDBACK = """
w_fb : 1 (linked)                   # the same W[post, pre]: B = W^T (exact weight transport)
k_w : integer (constant)
top_post = w_fb*err_pre : 1 (summed)
"""

# -- plasticity ----------------------------------------------------------------------------------
WEIGHT_HOLDER = """
w : 1                               # W[post, pre], one element per weight, shared by all replicas
g_w : 1                             # sum over the batch of err_post r_pre
m_w : 1                             # Adam's first moment
s_w : 1                             # Adam's second moment
lr : 1 (shared)
adam_step : integer (shared)
beta1 : 1 (shared)
beta2 : 1 (shared)
eps : 1 (shared)
grad_scale : 1 (shared)             # -1/batch: the gradient is minus the batch mean
"""
WEIGHT_GRADIENT = """
r_in : 1 (linked)                   # committed presynaptic rate of this replica
k_in : integer (constant)
g_w_post = err_pre*r_in : 1 (summed)
"""
PARAM_HOLDER = """
b : 1                               # bias of each neuron of the layer
tau_m : second
tau_r : second
g_b : 1                             # sum over the batch of err
g_tau : Hz                          # sum over the batch of err du/dt
m_b : 1
s_b : 1
m_tau : 1
s_tau : 1
clamped : 1                         # 1 where tau_m was held at tau_min this step
learn_bias : 1 (shared, constant)
lr : 1 (shared)
adam_step : integer (shared)
lr_tau : 1 (shared)
adam_step_tau : integer (shared)
beta1 : 1 (shared)
beta2 : 1 (shared)
eps : 1 (shared)
grad_scale : 1 (shared)             # -1/batch
tau_min : second (shared)           # lower bound of learned tau_m (0 s: none)
time_unit : second (shared, constant)  # spec.time_unit: tau_m learns in the spec's units
"""
PARAM_GRADIENT = """
g_b_post = err_pre : 1 (summed)
g_tau_post = err_pre*du_pre : Hz (summed)
"""

#: per-step optimizers (cortical_gle/engines/numpy_/optim.py, same operations in the same order):
#: ``{p}`` the parameter, ``{g}`` its gradient expression, ``{m}``/``{s}`` Adam's moments, ``{lr}``,
#: ``{t}`` Adam's step counter, ``{scale}`` the unit the update carries
OPTIMIZER = {
    "sgd": """
{p} = {p} - {scale}*({lr}*({g}))
""",
    "adam": """
{t} = {t} + 1
lr_t = {lr}*sqrt(1 - beta2**{t})/(1 - beta1**{t})
grad = {g}
{m} = beta1*{m} + (1 - beta1)*grad
{s} = beta2*{s} + (1 - beta2)*grad*grad
{p} = {p} - {scale}*(lr_t*{m}/(sqrt({s}) + eps))
""",
}
#: the gradients (minus the batch mean, numpy's sign convention) that the optimizers follow
GRAD_W = "g_w*grad_scale"
GRAD_B = "g_b*grad_scale*learn_bias"
GRAD_TAU = "-(g_tau*grad_scale)*time_unit"    # + mean(err du/dt) in the spec's time unit
#: after a tau_m step: hold it at tau_min (counted by the clamp counter)
TAU_CLAMP = """
clamped = int(tau_m < tau_min)
tau_m = clamped*tau_min + (1 - clamped)*tau_m
"""
#: counts the steps on which any tau_m of the network was held (numpy's tau_clamp_events)
CLAMP_COUNTER_GRADIENT = "n_low{l}_post = clamped_pre : 1 (summed)"
