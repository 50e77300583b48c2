//! Host engine for SAC (in progress): the update of [`super::Sac::gradient_step`] that a
//! host implementation must reproduce, to `f32` rounding, on one replay minibatch
//! `(s, a, r, s', d)` of `B` rows with `A`-dimensional actions.
//!
//! Shared inputs: two blocks of standard normal noise `eps'` (next state) and `eps` (current
//! state), each `[B, A]`, drawn in that order from the `noise` stream;
//! `alpha = exp(log_alpha)` read once, before any update; `Hbar = target_entropy` or `-A`.
//!
//! Policy head: the actor MLP (ReLU hidden layers, linear output `[B, 2A]`) gives
//! `mu = out[:, :A]` and `log_sigma = clamp(out[:, A:], -20, 2)` (the clamp passes no gradient
//! outside the interval). `u = mu + exp(log_sigma) eps`, `a~ = tanh(u)`, and
//! `log pi(a~|s) = sum_j [ -1/2 eps_j^2 - log_sigma_j - 1/2 log(2 pi) - 2 (log 2 - u_j - softplus(-2 u_j)) ]`
//! (the exact tanh change-of-variables term `log(1 - tanh(u)^2)`, no epsilon; see
//! [`kiln_tensor::TanhGaussian::log_prob_pre_tanh`]).
//!
//! 1. **Critic target**, no gradient: `a' = tanh(mu(s') + sigma(s') eps')` from the current
//!    actor; `y = r + gamma (1 - d) (min(Qbar_1(s', a'), Qbar_2(s', a')) - alpha log pi(a'|s'))`,
//!    `d` the `terminated` flag only (truncation bootstraps); critics take `[s, a]`
//!    concatenated, obs first.
//! 2. **Critic loss**: `J_Q = 1/2 (mean_b (Q_1(s, a) - y)^2 + mean_b (Q_2(s, a) - y)^2)`;
//!    one Adam step (lr, burn 0.22 Adam defaults, no clipping) on both critics' parameters
//!    together; `dJ_Q/dQ_j = (Q_j - y) / B`.
//! 3. **Actor loss**, through the critics *after* step 2, whose parameters take no gradient:
//!    `J_pi = mean_b (alpha log pi(a~|s) - min_j Q_j(s, a~))` with `eps`; the gradient flows
//!    through `a~` into `mu` and `log_sigma` (via `u`, both in the Gaussian term and the tanh
//!    correction), and through `-log_sigma` directly; the `min` routes the gradient to the
//!    smaller critic per row. One Adam step on the actor; the acting copy is refreshed.
//! 4. **Temperature** (if `autotune`): `J(alpha) = -log_alpha (mean_b log pi(a~|s) + Hbar)`,
//!    gradient `-(mean log pi + Hbar)` with the step-3 log-probs treated as constants; one
//!    scalar Adam step (PyTorch form, `f64`) on `log_alpha`.
//! 5. **Targets**: every `target_update_interval` gradient steps,
//!    `Qbar <- (1 - tau) Qbar + tau Q` over every critic parameter.
//!
//! Reported: `J_Q`, `J_pi`, the alpha used, `J(alpha)`, `mean log pi`, `mean Q_1(s, a)`
//! (before the critic step).
