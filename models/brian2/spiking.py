"""Brian2 equations of the *spiking* GLE microcircuit (``spiking: true``, issue #10 section 4).

The one place where the spiking variant's update lives; ``cortical_gle/engines/brian2_/spiking.py``
only creates the groups and synapses, schedules them and reads back.  It holds
docs/model.md#continuous-model (representation unit, error unit, plasticity) in the
discrete form of docs/model.md#discrete-time, mapped onto docs/model.md#microcircuit-mapping,
with three differences from the rate model (docs/brian2-spiking.md):

1. **Poisson spikes.**  Each pyramidal cell fires with probability
   ``r_max phi(u_pro) dt`` per step (a Bernoulli approximation of a Poisson process of
   intensity ``r_max phi(u_pro)``; a step that would need a probability above 1 is counted
   and the engine refuses the run).  ``phi`` must be non-negative (softplus, sigmoid, relu):
   a rate cannot be negative.  A GLE unit may be a population of ``K`` such cells that share
   their input (``cells_per_unit``): the population rate is ``K r_max phi``.
2. **Synaptic traces.**  Downstream cells do not see ``phi``: every presynaptic cell carries
   a trace of its spikes, ``tau_s ds/dt = -s + sum_k delta(t - t_k)/r_max`` (forward Euler like
   every other update), in rate units: for a stationary rate ``E[s] = phi(u_pro)`` exactly,
   and for ``tau_s = dt``, ``E[s(t+dt)]`` is the rate model's ``r(t+dt)``.  The basal
   dendrite sums ``w s_pre`` over the synapses, so ``I_basal = W r_hat`` with ``r_hat`` the
   population-mean trace of each presynaptic unit (``w = W / K``).
3. **Signed rate-based errors.**  Error neurons stay rate units: an error is signed (the
   teacher may ask for more or for less), while a spike train carries a non-negative rate;
   coding it in spikes would need an on/off pair of populations per neuron and would add
   spike noise to every gradient.  The error neuron is driven through the same synapses
   in reverse (``top = W^T err``, exact transport), is gain-modulated by its pyramidal
   cell's ``phi'(u_pro)`` and returns ``err`` to the apical dendrite, as in the rate model.
   The output error compares the target with the output cells' rate ``phi(u_pro)`` (the
   intensity their spike trains encode; the trace would add noise without information).

The network input ``x(t)`` drives the first layer as rates: it is a signed signal (an
Ornstein-Uhlenbeck process in the teacher tasks), which a non-negative spike rate cannot
carry without an offset.

Plasticity is local at the synapse: ``dw = eta err_post s_pre`` every step (SGD, or Adam
per synapse), ``db = eta err`` and optionally ``d tau_m = -eta_tau err du/dt`` per cell.

Units: time constants in ``second``; ``r_max`` in ``Hz``; potentials, rates in units of
``r_max`` (``phi``), traces and errors are dimensionless.  Update code is explicit
forward Euler in ``run_regularly`` blocks; the slots are listed in ``SCHEDULE`` of the
engine module.  ``err`` is the prospective error ``e`` (``e`` is Euler's number in Brian2).
"""

# -- input units: x(t) as rates, read from the run's input table -----------------------------------
INPUT = """
s : 1                               # input rate x(t): what the first layer's synapses read
t_chunk : second (shared)           # start time of the current input table
"""
INPUT_UPDATE = "s = x_table(t - t_chunk, i)"                 # slot 'start'

# -- pyramidal cell: soma u (tau_m), basal dendrite (W s_pre + b), apical dendrite (gamma err) ----
PYRAMIDAL = """
u : 1                               # soma potential
du : Hz                             # du/dt of this step (tau_m plasticity)
u_pro : 1                           # prospective potential u + tau_r du/dt
I_basal : 1                         # basal dendrite: sum of w s_pre over the forward synapses
top : 1                             # top-down error arriving for the paired error neuron: W^T err_above
err : 1 (linked)                    # apical dendrite: the paired error neuron's prospective error
b : 1                               # bias (basal dendrite)
tau_m : second                      # membrane time constant of the soma
tau_r : second (constant)           # prospective time constant
rate : 1                            # phi(u_pro): spike intensity in units of r_max
rp : 1                              # phi'(u_pro)
s : 1                               # trace of the cell's own spikes (rate units), read by its synapses
n_sat : integer                     # steps on which r_max phi dt exceeded 1 (one spike per step at most)
unit : integer (constant)           # the GLE unit this cell belongs to
gamma : 1 (shared, constant)        # apical nudging strength
r_max : Hz (shared, constant)       # rate at phi = 1
tau_s : second (shared, constant)   # synaptic trace time constant
"""
PYRAMIDAL_UPDATE = """
du = (I_basal + b + gamma*err - u)/tau_m
u_pro = u + tau_r*du
u = u + dt*du
rate = {phi}
rp = {phi_prime}
s = s - dt*s/tau_s
n_sat = n_sat + int(r_max*rate*dt > 1)
"""
#: Poisson spiking at r_max phi(u_pro) (slot 'thresholds', after this step's rate)
THRESHOLD = "rand() < r_max*rate*dt"
#: the spike enters the cell's trace (slot 'resets')
RESET = "s = s + 1/(r_max*tau_s)"

#: non-negative transfer functions (cortical_gle/phi.py) as Brian2 expressions of ``x`` = u_pro,
#: ``r`` = phi(x): only these can set a spike rate; the engine refuses the others by name
PHI = {
    "softplus": ("clip(x, 0, inf) + log1p(exp(-abs(x)))", "1/(1 + exp(-x))"),
    "sigmoid": ("1/(1 + exp(-x))", "r*(1 - r)"),
    "relu": ("clip(x, 0, inf)", "int(x > 0)"),
}

# -- output layer: the loss term (MSE), top = beta (y(t) - r_L(t)) ---------------------------------
OUTPUT_TOP = "top = beta*(y_table(t - t_chunk, unit) - rate)*has_target"   # slot 'start'
OUTPUT = """
beta : 1 (shared, constant)
has_target : 1 (shared)             # 0 for a run without target: no error enters
t_chunk : second (shared)
"""

# -- error neuron (rate-based, signed): membrane tau_r, prospective gain tau_m ---------------------
ERROR = """
v : 1                               # error-neuron potential
err : 1                             # prospective error e = v + tau_m dv/dt, sent to the apical dendrite
top : 1 (linked)                    # top-down input B^T e_{l+1} (or the loss term), at the paired cell
rp : 1 (linked)                     # phi'(u_pro) of the paired pyramidal cell (gain modulation)
tau_m : second (linked)
tau_r : second (linked)
"""
ERROR_UPDATE = {                    # slot 'before_groups': reads rp and top of the previous step
    True: """
dv = (top*rp - v)/tau_r
err = v + tau_m*dv
v = v + dt*dv
""",
    False: "err = top*rp",          # prospective errors off: the instantaneous gated error
}

# -- synapses: one object per layer carries W both ways (B = W^T exactly) --------------------------
FORWARD = """
w : 1                               # this synapse's weight: W[k, m] = sum of w over the cells of unit m
I_basal_post = w*s_pre : 1 (summed)
"""
#: between pyramidal layers the same synapses return the error: top_pre = sum_post w err_post
FEEDBACK = """
top_pre = w*err_post : 1 (summed)
"""

# -- plasticity (local: the synapse's own weight, its postsynaptic error, its presynaptic trace) ----
#: per-element learning state of parameter ``{p}``: its rate ``lr_{p}`` (in the parameter's unit:
#: ``g`` is dimensionless; a synapse learns at lr / K, so that W = sum of w learns at lr) and Adam's
#: moments and step count, per element
LEARNING_STATE = """
lr_{p} : {unit} (shared)
m_{p} : 1
v_{p} : 1
n_{p} : 1
"""
#: the update, written as an ascent along ``g`` (= -gradient of numpy's convention)
OPTIMIZER = {
    "sgd": "{p} = {p} + lr_{p}*({g})",
    "adam": """
n_{p} = n_{p} + 1
m_{p} = 0.9*m_{p} + 0.1*({g})
v_{p} = 0.999*v_{p} + 0.001*({g})**2
{p} = {p} + lr_{p}*sqrt(1 - 0.999**n_{p})/(1 - 0.9**n_{p})*m_{p}/(sqrt(v_{p}) + 1e-8)
""",
}
#: ascent directions: dW = eta err_post s_pre, db = eta err, d tau_m = -eta_tau err du/dt
G_W = "err_post*s_pre"
G_B = "err"
G_TAU = "-err*du*time_unit"
#: learned tau_m is held at tau_min (counted)
TAU_CLAMP = """
low = int(tau_m < tau_min)
n_clamp = n_clamp + low
tau_m = low*tau_min + (1 - low)*tau_m
"""
TAU_STATE = """
tau_min : second (shared)
time_unit : second (shared, constant)
n_clamp : integer
"""
