//! A host engine for small MLPs: plain `f32` slices, a fused forward pass that keeps its
//! activations, a hand-written backward pass, Adam and global-norm clipping, with every
//! buffer allocated once.
//!
//! Why it exists: at the sizes of classic-control RL (a 64-64 tanh network on a minibatch of
//! 256) a training step is a few MFLOP, and on a CPU backend the cost of burn's per-op
//! dispatch, autodiff-graph building and fresh allocations is larger than the arithmetic.
//! This module does the same arithmetic with none of that: the matrix products go to the
//! `gemm` crate (run-time AVX-512/AVX2 dispatch), the elementwise passes are branch-free
//! loops compiled for the same instruction sets. It knows nothing of burn; [`crate::Mlp`]
//! converts to and from a [`HostMlp`] with [`crate::Mlp::to_host`] and
//! [`crate::Mlp::load_host`].
//!
//! Numbers match the burn path up to `f32` rounding: the layer layout (`y = x W + b`, `W`
//! stored `[in, out]` row-major), the update rule of burn 0.22's Adam/AdamW
//! ([`HostAdam`]) and the clipping rule of [`crate::clip_grad_norm`] ([`clip_grad_norm_host`])
//! are the same; `tanh` is a rational approximation within 5e-7 of the exact value (2e-7
//! for burn's [`crate::fast_tanh`]).
//!
//! ```
//! use kiln_tensor::host::{HostActivation, HostMlp, MlpCache};
//!
//! let mlp = HostMlp::zeros(vec![4, 8, 2], HostActivation::Tanh).unwrap();
//! let mut cache = MlpCache::new(&mlp, 3);
//! let x = [0.5f32; 12];
//! mlp.forward(&x, 3, &mut cache).unwrap();
//! assert_eq!(cache.output(), &[0.0; 6]);
//! let mut grads = vec![0.0; mlp.num_params()];
//! mlp.backward(&mut cache, &[1.0; 6], &mut grads, None).unwrap();
//! // d/db of the output layer is the column sum of d_out.
//! assert_eq!(&grads[grads.len() - 2..], &[3.0, 3.0]);
//! ```

use crate::error::{Result, TensorError};

/// The nonlinearity after each hidden layer of a [`HostMlp`] (the output layer is linear).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostActivation {
    /// `tanh(x)`.
    Tanh,
    /// `max(0, x)`.
    Relu,
    /// `x` (a linear network).
    Identity,
}

/// A dense MLP on the host: `x -> act(x W_1 + b_1) -> ... -> x W_L + b_L`.
///
/// All parameters live in one flat vector, layer by layer, each layer's `W` (`[in, out]`
/// row-major) followed by its `b` (`[out]`), so optimizers and gradient clipping work on
/// one slice; gradients use the same layout.
#[derive(Debug, Clone, PartialEq)]
pub struct HostMlp {
    sizes: Vec<usize>,
    activation: HostActivation,
    params: Vec<f32>,
    /// Start of each layer's `W` in `params`; its `b` follows at `+ in * out`.
    offsets: Vec<usize>,
}

/// Activations of one forward pass, kept for the backward pass, and the backward pass's
/// scratch. Sized for up to `capacity` rows; reused across calls without allocating.
#[derive(Debug, Clone)]
pub struct MlpCache {
    rows: usize,
    capacity: usize,
    /// `acts[0]` is the input, `acts[l]` the output of layer `l` (after its activation).
    acts: Vec<Vec<f32>>,
    /// Gradient with respect to a layer's output (two buffers, used in turn).
    delta: [Vec<f32>; 2],
}

fn shape(what: &'static str, expected: usize, got: usize) -> TensorError {
    TensorError::ShapeMismatch {
        what,
        expected: expected.to_string(),
        got: got.to_string(),
    }
}

impl HostMlp {
    /// A network with widths `sizes` (input first) and all parameters zero.
    pub fn zeros(sizes: Vec<usize>, activation: HostActivation) -> Result<Self> {
        if sizes.len() < 2 || sizes.contains(&0) {
            return Err(TensorError::InvalidConfig {
                field: "sizes",
                value: format!("{sizes:?}"),
                reason: "need at least an input and an output width, each at least 1",
            });
        }
        let mut offsets = Vec::with_capacity(sizes.len() - 1);
        let mut n = 0;
        for w in sizes.windows(2) {
            offsets.push(n);
            n += w[0] * w[1] + w[1];
        }
        Ok(Self {
            sizes,
            activation,
            params: vec![0.0; n],
            offsets,
        })
    }

    /// A network from per-layer weights (`[in, out]` row-major) and biases.
    pub fn from_layers(
        sizes: Vec<usize>,
        activation: HostActivation,
        weights: &[Vec<f32>],
        biases: &[Vec<f32>],
    ) -> Result<Self> {
        let mut mlp = Self::zeros(sizes, activation)?;
        let layers = mlp.depth();
        if weights.len() != layers || biases.len() != layers {
            return Err(shape("layers", layers, weights.len().min(biases.len())));
        }
        for l in 0..layers {
            let (w, b) = mlp.layer_mut(l);
            if weights[l].len() != w.len() {
                return Err(shape("layer weight", w.len(), weights[l].len()));
            }
            if biases[l].len() != b.len() {
                return Err(shape("layer bias", b.len(), biases[l].len()));
            }
            w.copy_from_slice(&weights[l]);
            b.copy_from_slice(&biases[l]);
        }
        Ok(mlp)
    }

    /// Layer widths, input first.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// The hidden-layer activation.
    pub fn activation(&self) -> HostActivation {
        self.activation
    }

    /// Number of linear layers.
    pub fn depth(&self) -> usize {
        self.sizes.len() - 1
    }

    /// Input width.
    pub fn input_dim(&self) -> usize {
        self.sizes[0]
    }

    /// Output width.
    pub fn output_dim(&self) -> usize {
        self.sizes[self.sizes.len() - 1]
    }

    /// Number of parameters (the length of [`HostMlp::params`] and of a gradient).
    pub fn num_params(&self) -> usize {
        self.params.len()
    }

    /// All parameters, flat.
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// All parameters, flat and mutable (for an optimizer step).
    pub fn params_mut(&mut self) -> &mut [f32] {
        &mut self.params
    }

    /// Layer `l`'s `(W, b)`, `W` `[in, out]` row-major.
    pub fn layer(&self, l: usize) -> (&[f32], &[f32]) {
        let (i, o) = (self.sizes[l], self.sizes[l + 1]);
        let w0 = self.offsets[l];
        let (w, rest) = self.params[w0..].split_at(i * o);
        (w, &rest[..o])
    }

    /// Layer `l`'s `(W, b)`, mutable.
    pub fn layer_mut(&mut self, l: usize) -> (&mut [f32], &mut [f32]) {
        let (i, o) = (self.sizes[l], self.sizes[l + 1]);
        let w0 = self.offsets[l];
        let (w, rest) = self.params[w0..].split_at_mut(i * o);
        (w, &mut rest[..o])
    }

    /// Forward pass of `rows` inputs `x` (`[rows, in]` row-major), keeping every layer's
    /// activations in `cache`; the output is [`MlpCache::output`].
    pub fn forward(&self, x: &[f32], rows: usize, cache: &mut MlpCache) -> Result<()> {
        if x.len() != rows * self.input_dim() {
            return Err(shape("host MLP input", rows * self.input_dim(), x.len()));
        }
        cache.fit(self, rows)?;
        cache.acts[0][..x.len()].copy_from_slice(x);
        let layers = self.depth();
        for l in 0..layers {
            let (i, o) = (self.sizes[l], self.sizes[l + 1]);
            let (w, b) = self.layer(l);
            let (before, after) = cache.acts.split_at_mut(l + 1);
            let input = &before[l][..rows * i];
            let out = &mut after[0][..rows * o];
            for row in out.chunks_exact_mut(o) {
                row.copy_from_slice(b);
            }
            matmul(
                rows,
                o,
                i,
                input,
                Layout::RowMajor,
                w,
                Layout::RowMajor,
                out,
                true,
            );
            if l + 1 < layers {
                activate(self.activation, out);
            }
        }
        Ok(())
    }

    /// Backward pass of the last [`HostMlp::forward`] on `cache`: given `d_out`, the gradient
    /// of a scalar loss with respect to the output (`[rows, out]`), **adds** the parameter
    /// gradients into `grads` (layout of [`HostMlp::params`]) and, if asked, writes the
    /// gradient with respect to the input into `d_input` (`[rows, in]`).
    pub fn backward(
        &self,
        cache: &mut MlpCache,
        d_out: &[f32],
        grads: &mut [f32],
        d_input: Option<&mut [f32]>,
    ) -> Result<()> {
        self.backward_impl(cache, d_out, Some(grads), d_input)
    }

    /// The gradient with respect to the input only (`[rows, in]`, written into `d_input`) of
    /// the last [`HostMlp::forward`] on `cache`, given `d_out`: the backward pass without the
    /// parameter-gradient products, for a network that is differentiated through but not
    /// trained (SAC's critics in the actor loss, `dQ/da`).
    pub fn input_gradient(
        &self,
        cache: &mut MlpCache,
        d_out: &[f32],
        d_input: &mut [f32],
    ) -> Result<()> {
        self.backward_impl(cache, d_out, None, Some(d_input))
    }

    fn backward_impl(
        &self,
        cache: &mut MlpCache,
        d_out: &[f32],
        mut grads: Option<&mut [f32]>,
        d_input: Option<&mut [f32]>,
    ) -> Result<()> {
        let rows = cache.rows;
        if d_out.len() != rows * self.output_dim() {
            return Err(shape(
                "host MLP output gradient",
                rows * self.output_dim(),
                d_out.len(),
            ));
        }
        if let Some(g) = &grads
            && g.len() != self.num_params()
        {
            return Err(shape("host MLP gradient", self.num_params(), g.len()));
        }
        if let Some(d) = &d_input
            && d.len() != rows * self.input_dim()
        {
            return Err(shape(
                "host MLP input gradient",
                rows * self.input_dim(),
                d.len(),
            ));
        }
        let layers = self.depth();
        let MlpCache { acts, delta, .. } = cache;
        let [d_a, d_b] = delta;
        d_a[..d_out.len()].copy_from_slice(d_out);
        let (mut cur, mut next) = (d_a, d_b);
        for l in (0..layers).rev() {
            let (i, o) = (self.sizes[l], self.sizes[l + 1]);
            let dz = &mut cur[..rows * o];
            if l + 1 < layers {
                activation_backward(self.activation, &acts[l + 1][..rows * o], dz);
            }
            let dz = &*dz;
            if let Some(grads) = grads.as_deref_mut() {
                let input = &acts[l][..rows * i];
                let w0 = self.offsets[l];
                let (gw, gb) = grads[w0..w0 + i * o + o].split_at_mut(i * o);
                // dW += x^T dz, db += sum over rows of dz.
                matmul(
                    i,
                    o,
                    rows,
                    input,
                    Layout::Transposed,
                    dz,
                    Layout::RowMajor,
                    gw,
                    true,
                );
                for row in dz.chunks_exact(o) {
                    for (g, &d) in gb.iter_mut().zip(row) {
                        *g += d;
                    }
                }
            }
            let (w, _) = self.layer(l);
            // dx = dz W^T.
            let input_grad = |dz: &[f32], dx: &mut [f32]| {
                matmul(
                    rows,
                    i,
                    o,
                    dz,
                    Layout::RowMajor,
                    w,
                    Layout::Transposed,
                    dx,
                    false,
                );
            };
            if l > 0 {
                input_grad(dz, &mut next[..rows * i]);
                std::mem::swap(&mut cur, &mut next);
            } else if let Some(dx) = d_input {
                input_grad(dz, dx);
                return Ok(());
            }
        }
        Ok(())
    }
}

impl MlpCache {
    /// A cache for `mlp` with room for `capacity` rows (it grows if a forward needs more).
    pub fn new(mlp: &HostMlp, capacity: usize) -> Self {
        let widest = mlp.sizes.iter().copied().max().unwrap_or(1);
        Self {
            rows: 0,
            capacity,
            acts: mlp.sizes.iter().map(|&w| vec![0.0; capacity * w]).collect(),
            delta: [vec![0.0; capacity * widest], vec![0.0; capacity * widest]],
        }
    }

    fn fit(&mut self, mlp: &HostMlp, rows: usize) -> Result<()> {
        if self.acts.len() != mlp.sizes.len()
            || self
                .acts
                .iter()
                .zip(&mlp.sizes)
                .any(|(a, &w)| a.len() != self.capacity * w)
        {
            return Err(shape(
                "host MLP cache layers",
                mlp.sizes.len(),
                self.acts.len(),
            ));
        }
        if rows > self.capacity {
            *self = Self::new(mlp, rows);
        }
        self.rows = rows;
        Ok(())
    }

    /// Copies the activations of rows `rows` (of the last forward pass) into `dst`, a cache
    /// of the same network, as if `dst` had run the forward pass on those rows alone: a
    /// backward pass on `dst` then costs only the gathered rows (SAC's `dQ/da` of the rows
    /// where a critic is the smaller of the two). `dst` grows if it is too small.
    pub fn gather_rows(&self, rows: &[usize], dst: &mut MlpCache) -> Result<()> {
        let width = |c: &MlpCache, l: usize| c.acts[l].len() / c.capacity.max(1);
        if dst.acts.len() != self.acts.len()
            || (0..self.acts.len()).any(|l| width(dst, l) != width(self, l))
        {
            return Err(shape(
                "host MLP cache layers",
                self.acts.len(),
                dst.acts.len(),
            ));
        }
        if let Some(&bad) = rows.iter().find(|&&r| r >= self.rows) {
            return Err(shape("gathered row", self.rows, bad));
        }
        if rows.len() > dst.capacity {
            let n = rows.len();
            let widest = (0..self.acts.len())
                .map(|l| width(self, l))
                .max()
                .unwrap_or(1);
            dst.acts = (0..self.acts.len())
                .map(|l| vec![0.0; n * width(self, l)])
                .collect();
            dst.delta = [vec![0.0; n * widest], vec![0.0; n * widest]];
            dst.capacity = n;
        }
        for (src, out) in self.acts.iter().zip(dst.acts.iter_mut()) {
            let w = src.len() / self.capacity.max(1);
            for (k, &r) in rows.iter().enumerate() {
                out[k * w..(k + 1) * w].copy_from_slice(&src[r * w..(r + 1) * w]);
            }
        }
        dst.rows = rows.len();
        Ok(())
    }

    /// Rows of the last forward pass.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The network output of the last forward pass (`[rows, out]`).
    pub fn output(&self) -> &[f32] {
        let last = &self.acts[self.acts.len() - 1];
        let out = last.len() / self.capacity.max(1);
        &last[..self.rows * out]
    }
}

#[derive(Clone, Copy)]
enum Layout {
    /// Stored as the matrix itself, row-major.
    RowMajor,
    /// Stored as its transpose, row-major.
    Transposed,
}

/// `dst (m x n) [+]= lhs (m x k) * rhs (k x n)`, each operand row-major in the given layout
/// (`Transposed`: the slice holds the `k x m` / `n x k` transpose).
#[allow(clippy::too_many_arguments)]
fn matmul(
    m: usize,
    n: usize,
    k: usize,
    lhs: &[f32],
    lhs_layout: Layout,
    rhs: &[f32],
    rhs_layout: Layout,
    dst: &mut [f32],
    accumulate: bool,
) {
    assert!(lhs.len() >= m * k && rhs.len() >= k * n && dst.len() >= m * n);
    let (lhs_cs, lhs_rs) = match lhs_layout {
        Layout::RowMajor => (1, k as isize),
        Layout::Transposed => (m as isize, 1),
    };
    let (rhs_cs, rhs_rs) = match rhs_layout {
        Layout::RowMajor => (1, n as isize),
        Layout::Transposed => (k as isize, 1),
    };
    // SAFETY: the assert above bounds every extent: element (r, c) of an operand stored with
    // strides (rs, cs) lies at r * rs + c * cs < rows * cols for both layouts; `dst` does not
    // alias the inputs (it is a distinct `&mut`).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.as_ptr(),
            rhs_cs,
            rhs_rs,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            // One thread: at 256 x 64 x 64 gemm's rayon split costs more than it saves (PPO
            // CartPole 100k took 3.3 s with `Rayon(0)`, 1.9 s without, on 2 cores).
            gemm::Parallelism::None,
        );
    }
}

/// Eigen's rational approximation of `tanh` on `[-9, 9]` (odd degree-13 numerator over an
/// even degree-6 denominator), exact to `f32` rounding outside: branch-free, so the loops
/// over it vectorize.
#[inline(always)]
fn tanh_rational(x: f32) -> f32 {
    const A1: f32 = 4.893_524_6e-3;
    const A3: f32 = 6.372_619_3e-4;
    const A5: f32 = 1.485_722_4e-5;
    const A7: f32 = 5.122_297e-8;
    const A9: f32 = -8.604_672e-11;
    const A11: f32 = 2.000_188e-13;
    const A13: f32 = -2.760_768_5e-16;
    const B0: f32 = 4.893_525e-3;
    const B2: f32 = 2.268_434_6e-3;
    const B4: f32 = 1.185_347e-4;
    const B6: f32 = 1.198_258_4e-6;
    // Past +-9 tanh is 1 in f32; near 9 the rational overshoots 1 by an ulp or two.
    let x = x.clamp(-9.0, 9.0);
    let x2 = x * x;
    let p = ((((((A13 * x2 + A11) * x2 + A9) * x2 + A7) * x2 + A5) * x2 + A3) * x2 + A1) * x;
    let q = ((B6 * x2 + B4) * x2 + B2) * x2 + B0;
    (p / q).clamp(-1.0, 1.0)
}

#[inline(always)]
fn activate_generic(act: HostActivation, v: &mut [f32]) {
    match act {
        HostActivation::Tanh => v.iter_mut().for_each(|x| *x = tanh_rational(*x)),
        HostActivation::Relu => v.iter_mut().for_each(|x| *x = x.max(0.0)),
        HostActivation::Identity => {}
    }
}

#[inline(always)]
fn activation_backward_generic(act: HostActivation, y: &[f32], d: &mut [f32]) {
    match act {
        HostActivation::Tanh => d.iter_mut().zip(y).for_each(|(d, &y)| *d *= 1.0 - y * y),
        HostActivation::Relu => d
            .iter_mut()
            .zip(y)
            .for_each(|(d, &y)| *d = if y > 0.0 { *d } else { 0.0 }),
        HostActivation::Identity => {}
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::HostActivation;

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn activate_avx512(act: HostActivation, v: &mut [f32]) {
        super::activate_generic(act, v)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn activate_avx2(act: HostActivation, v: &mut [f32]) {
        super::activate_generic(act, v)
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn backward_avx512(act: HostActivation, y: &[f32], d: &mut [f32]) {
        super::activation_backward_generic(act, y, d)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn backward_avx2(act: HostActivation, y: &[f32], d: &mut [f32]) {
        super::activation_backward_generic(act, y, d)
    }
}

/// Applies `act` in place, with the widest vector instructions this CPU has.
fn activate(act: HostActivation, v: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked above).
            return unsafe { simd::activate_avx512(act, v) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked above).
            return unsafe { simd::activate_avx2(act, v) };
        }
    }
    activate_generic(act, v)
}

/// `d *= act'(.)` given the activation's outputs `y`.
fn activation_backward(act: HostActivation, y: &[f32], d: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked above).
            return unsafe { simd::backward_avx512(act, y, d) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked above).
            return unsafe { simd::backward_avx2(act, y, d) };
        }
    }
    activation_backward_generic(act, y, d)
}

/// `tanh` of every element in place (the host MLP's activation; within 2e-7 of the exact
/// value).
pub fn tanh_in_place(v: &mut [f32]) {
    activate(HostActivation::Tanh, v)
}

/// Adam / AdamW on one flat parameter slice, reproducing burn 0.22's update rule in `f32`:
/// `m <- b1 m + (1 - b1) g`, `v <- b2 v + (1 - b2) g^2`, and with `c2 = sqrt(1 - b2^t)`
/// - Adam: `p <- p - lr * (m * c2 / (1 - b1^t)) / (sqrt(v) + eps * c2)`, after the L2 penalty
///   `g <- g + wd * p` if `weight_decay > 0`;
/// - AdamW (`decoupled`): `p <- p (1 - lr wd) - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)`.
#[derive(Debug, Clone, PartialEq)]
pub struct HostAdam {
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    decoupled: bool,
    time: i32,
    m: Vec<f32>,
    v: Vec<f32>,
}

impl HostAdam {
    /// Adam over `len` parameters with the settings of [`crate::AdamSettings`].
    pub fn new(settings: &crate::AdamSettings, len: usize) -> Result<Self> {
        settings.validate()?;
        Ok(Self {
            beta1: settings.beta1 as f32,
            beta2: settings.beta2 as f32,
            eps: settings.eps as f32,
            weight_decay: settings.weight_decay as f32,
            decoupled: settings.decoupled,
            time: 0,
            m: vec![0.0; len],
            v: vec![0.0; len],
        })
    }

    /// Steps taken.
    pub fn time(&self) -> i32 {
        self.time
    }

    /// One step with learning rate `lr` on `params` given `grads`.
    pub fn step(&mut self, lr: f64, params: &mut [f32], grads: &[f32]) -> Result<()> {
        if params.len() != self.m.len() || grads.len() != self.m.len() {
            return Err(shape(
                "Adam parameters",
                self.m.len(),
                params.len().min(grads.len()),
            ));
        }
        self.time += 1;
        let (b1, b2) = (self.beta1, self.beta2);
        let lr32 = lr as f32;
        if self.decoupled {
            let c1 = 1.0 - b1.powi(self.time);
            let c2 = 1.0 - b2.powi(self.time);
            let decay = (lr * f64::from(self.weight_decay)) as f32;
            for (((p, &g), m), v) in params
                .iter_mut()
                .zip(grads)
                .zip(&mut self.m)
                .zip(&mut self.v)
            {
                *m = *m * b1 + g * (1.0 - b1);
                *v = *v * b2 + g * g * (1.0 - b2);
                let delta = (*m / c1) / ((*v / c2).sqrt() + self.eps);
                let decayed = if decay == 0.0 { *p } else { *p * (1.0 - decay) };
                *p = decayed - delta * lr32;
            }
        } else {
            let c2 = (1.0 - b2.powi(self.time)).sqrt();
            let factor = c2 / (1.0 - b1.powi(self.time));
            let eps = self.eps * c2;
            let wd = self.weight_decay;
            for (((p, &g), m), v) in params
                .iter_mut()
                .zip(grads)
                .zip(&mut self.m)
                .zip(&mut self.v)
            {
                let g = if wd > 0.0 { *p * wd + g } else { g };
                *m = *m * b1 + g * (1.0 - b1);
                *v = *v * b2 + g * g * (1.0 - b2);
                let delta = (*m * factor) / (v.sqrt() + eps);
                *p -= delta * lr32;
            }
        }
        Ok(())
    }
}

/// Polyak (soft) target update on host slices, `target <- (1 - tau) target + tau online`,
/// element by element in `f32` as [`crate::polyak_update`] computes it.
pub fn polyak_host(target: &mut [f32], online: &[f32], tau: f64) -> Result<()> {
    if target.len() != online.len() {
        return Err(shape("Polyak target", online.len(), target.len()));
    }
    let (keep, take) = ((1.0 - tau) as f32, tau as f32);
    for (t, &o) in target.iter_mut().zip(online) {
        *t = *t * keep + o * take;
    }
    Ok(())
}

/// The global L2 norm of several gradient slices, accumulated in `f64`.
pub fn grad_norm_host(grads: &[&[f32]]) -> f64 {
    grads
        .iter()
        .flat_map(|g| g.iter())
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt()
}

/// [`crate::clip_grad_norm`] on host slices: rescales all of them by
/// `max_norm / (norm + 1e-6)` when that is below 1 (PyTorch's `clip_grad_norm_`) and returns
/// the norm before clipping.
pub fn clip_grad_norm_host(grads: &mut [&mut [f32]], max_norm: f64) -> f64 {
    let norm = grads
        .iter()
        .flat_map(|g| g.iter())
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        let c = coef as f32;
        for g in grads.iter_mut() {
            g.iter_mut().for_each(|x| *x *= c);
        }
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rational_tanh_is_within_5e7_of_tanh() {
        let xs: Vec<f32> = (-4000..=4000).map(|i| i as f32 * 0.003).collect();
        let mut ys = xs.clone();
        tanh_in_place(&mut ys);
        for (&x, &y) in xs.iter().zip(&ys) {
            let t = f64::from(x).tanh();
            assert!((f64::from(y) - t).abs() < 5e-7, "tanh({x}) = {y}, want {t}");
        }
        let mut big = [30.0f32, -30.0, 0.0];
        tanh_in_place(&mut big);
        assert_eq!(big, [1.0, -1.0, 0.0]);
    }

    /// Central differences in f64 of a quadratic loss through the network.
    fn numeric_grads(mlp: &HostMlp, x: &[f32], rows: usize, target: &[f32]) -> Vec<f64> {
        let loss = |m: &HostMlp| {
            let mut c = MlpCache::new(m, rows);
            m.forward(x, rows, &mut c).unwrap();
            c.output()
                .iter()
                .zip(target)
                .map(|(&y, &t)| 0.5 * (f64::from(y) - f64::from(t)).powi(2))
                .sum::<f64>()
        };
        let h = 1e-2f32;
        (0..mlp.num_params())
            .map(|k| {
                let mut a = mlp.clone();
                a.params_mut()[k] += h;
                let mut b = mlp.clone();
                b.params_mut()[k] -= h;
                (loss(&a) - loss(&b)) / (2.0 * f64::from(h))
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn backward_matches_finite_differences(
            inp in 1usize..5, hid in 1usize..6, out in 1usize..4, rows in 1usize..5,
            act in 0usize..3, seed in 0u64..1000,
        ) {
            let act = [HostActivation::Tanh, HostActivation::Relu, HostActivation::Identity][act];
            let mut mlp = HostMlp::zeros(vec![inp, hid, out], act).unwrap();
            let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut next = || {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            };
            mlp.params_mut().iter_mut().for_each(|p| *p = next());
            let x: Vec<f32> = (0..rows * inp).map(|_| next()).collect();
            let target: Vec<f32> = (0..rows * out).map(|_| next()).collect();
            let mut cache = MlpCache::new(&mlp, rows);
            mlp.forward(&x, rows, &mut cache).unwrap();
            let d_out: Vec<f32> = cache.output().iter().zip(&target).map(|(y, t)| y - t).collect();
            let mut grads = vec![0.0; mlp.num_params()];
            let mut dx = vec![0.0; rows * inp];
            mlp.backward(&mut cache, &d_out, &mut grads, Some(&mut dx)).unwrap();
            let want = numeric_grads(&mlp, &x, rows, &target);
            for (k, (&g, w)) in grads.iter().zip(&want).enumerate() {
                // ReLU kinks inside the difference step make single entries unreliable.
                if act != HostActivation::Relu {
                    prop_assert!((f64::from(g) - w).abs() < 2e-3 * (1.0 + w.abs()), "param {}: {} vs {}", k, g, w);
                }
            }
            // The input gradient, by central differences in the inputs.
            if act != HostActivation::Relu {
                let loss = |x: &[f32]| {
                    let mut c = MlpCache::new(&mlp, rows);
                    mlp.forward(x, rows, &mut c).unwrap();
                    c.output().iter().zip(&target)
                        .map(|(&y, &t)| 0.5 * (f64::from(y) - f64::from(t)).powi(2)).sum::<f64>()
                };
                for k in 0..x.len() {
                    let (mut a, mut b) = (x.clone(), x.clone());
                    a[k] += 1e-2;
                    b[k] -= 1e-2;
                    let want = (loss(&a) - loss(&b)) / 2e-2;
                    prop_assert!((f64::from(dx[k]) - want).abs() < 2e-3 * (1.0 + want.abs()), "dx {}: {} vs {}", k, dx[k], want);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// [`HostMlp::input_gradient`] of a two-hidden-layer ReLU network against central
        /// differences. A ReLU network is affine between kinks, so a difference whose two
        /// points share the hidden units' on/off pattern is exact up to rounding; a
        /// coordinate whose step crosses a kink is skipped.
        #[test]
        fn relu_input_gradient_matches_finite_differences(
            inp in 1usize..6, hid in 1usize..9, out in 1usize..4, rows in 1usize..6,
            seed in 0u64..10_000,
        ) {
            let mut mlp = HostMlp::zeros(vec![inp, hid, hid, out], HostActivation::Relu).unwrap();
            let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut next = || {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            };
            mlp.params_mut().iter_mut().for_each(|p| *p = next());
            let x: Vec<f32> = (0..rows * inp).map(|_| next()).collect();
            let c: Vec<f32> = (0..rows * out).map(|_| next()).collect();
            // loss = sum(c * y), so d_out = c.
            let mut cache = MlpCache::new(&mlp, rows);
            mlp.forward(&x, rows, &mut cache).unwrap();
            let mut dx = vec![0.0; rows * inp];
            mlp.input_gradient(&mut cache, &c, &mut dx).unwrap();
            // The same product as the full backward's input gradient, which leaves `grads` alone
            // here: input_gradient adds no parameter gradient.
            let mut grads = vec![0.0; mlp.num_params()];
            let mut dx_full = vec![0.0; rows * inp];
            mlp.forward(&x, rows, &mut cache).unwrap();
            mlp.backward(&mut cache, &c, &mut grads, Some(&mut dx_full)).unwrap();
            prop_assert_eq!(&dx, &dx_full);
            let eval = |x: &[f32]| {
                let mut cc = MlpCache::new(&mlp, rows);
                mlp.forward(x, rows, &mut cc).unwrap();
                let loss = cc.output().iter().zip(&c)
                    .map(|(&y, &c)| f64::from(y) * f64::from(c)).sum::<f64>();
                let pattern: Vec<bool> = cc.acts[1..mlp.depth()].iter()
                    .flat_map(|a| a[..rows * hid].iter().map(|&v| v > 0.0)).collect();
                (loss, pattern)
            };
            let h = 1e-3f32;
            let (_, base) = eval(&x);
            for k in 0..x.len() {
                let (mut a, mut b) = (x.clone(), x.clone());
                a[k] += h;
                b[k] -= h;
                let ((la, pa), (lb, pb)) = (eval(&a), eval(&b));
                if pa != base || pb != base {
                    continue;
                }
                let want = (la - lb) / (2.0 * f64::from(h));
                let got = f64::from(dx[k]);
                prop_assert!((got - want).abs() < 2e-3 * (1.0 + want.abs()), "dx {}: {} vs {}", k, got, want);
            }
        }
    }

    #[test]
    fn polyak_blends_toward_the_online_values() {
        let mut target = vec![1.0f32, -2.0, 0.5];
        polyak_host(&mut target, &[3.0, 2.0, 0.5], 0.25).unwrap();
        assert_eq!(target, [1.5, -1.0, 0.5]);
        assert!(polyak_host(&mut target, &[0.0], 0.1).is_err());
    }

    #[test]
    fn shape_errors_are_typed() {
        let mlp = HostMlp::zeros(vec![3, 4, 2], HostActivation::Tanh).unwrap();
        let mut cache = MlpCache::new(&mlp, 2);
        let e = mlp
            .forward(&[0.0; 5], 2, &mut cache)
            .unwrap_err()
            .to_string();
        assert!(e.contains("host MLP input"), "{e}");
        mlp.forward(&[0.0; 6], 2, &mut cache).unwrap();
        let mut g = vec![0.0; 3];
        let e = mlp
            .backward(&mut cache, &[0.0; 4], &mut g, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("gradient"), "{e}");
        assert!(HostMlp::zeros(vec![3], HostActivation::Tanh).is_err());
        // A forward with more rows than the cache was built for grows it.
        mlp.forward(&[0.0; 15], 5, &mut cache).unwrap();
        assert_eq!(cache.output().len(), 10);
    }

    #[test]
    fn clipping_rescales_to_the_max_norm() {
        let mut a = vec![3.0f32];
        let mut b = vec![4.0f32];
        let norm = clip_grad_norm_host(&mut [&mut a, &mut b], 1.0);
        assert!((norm - 5.0).abs() < 1e-12);
        let scale = 1.0 / (5.0 + 1e-6);
        assert!((f64::from(a[0]) - 3.0 * scale).abs() < 1e-6);
        assert!((f64::from(b[0]) - 4.0 * scale).abs() < 1e-6);
        let norm = clip_grad_norm_host(&mut [&mut a, &mut b], 10.0);
        assert!((norm - 1.0).abs() < 1e-5);
        assert!((grad_norm_host(&[&a, &b]) - norm).abs() < 1e-12);
    }
}
