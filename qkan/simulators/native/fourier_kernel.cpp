// Closed form (fixed encoding), forward and backward, for qkan/simulators/fourier.py.
//
// qkan_fourier_compile: theta (E, n_slots, k) -> Fourier coefficients (1 + 2R, E), edges as SIMD
//   lanes, in the Bloch picture: r = e_x (H|0>); each gate is a rotation of r (RX, RY, RZ) or a
//   signed permutation (H, X, Z); the data rotation turns the pair of components around its axis
//   by x, which shifts their Fourier coefficients by one (see encode); f = <Z> = r_z. Real 3-vectors
//   of coefficient arrays, O(R^2) per edge, exact; backward runs the steps in reverse from the
//   final state kept by the forward, inverting the state as it goes (nothing per step is stored).
//   Arguments: FourierCompileArgs (abi.h); saved: see Compile::saved (null: the backward recomputes the forward).
//
// qkan_fourier_features: x (N, I) -> phi (N, slots, I) with phi[:, k-1] = cos(k x), phi[:, K+k-1] =
//   sin(k x) (k = 1..K; slots >= 2K, further slots untouched), by one sin/cos and the angle
//   addition recurrence; backward dx = sum_k k (g_sin cos(k x) - g_cos sin(k x)), recomputed the same way.
//   With base 1 slot 2K holds silu(x) (the layer's base term, folded into the same product).
//   Arguments: FourierFeaturesArgs (abi.h).
//
// qkan_fourier_weights: coefficients (1 + 2K, O', I') and the edge weights -> the layer's matrix
//   W (O, S, I) and bias (O) (see Weights below); backward to the coefficients and weights.
//   Arguments: FourierWeightsArgs (abi.h).

#include "circuit.h"

namespace {

using namespace qkan;

template <class T> struct Compile {
  int64_t E, R, n_slots, k, backward;
  Program prog;
  const T* theta;
  T* coeffs;
  const T* g_coeffs;
  T* g_theta;
  T* saved;  // (E / W, n_saved(), W) blocks (one per edge vector): the final state and every gate's (cos, sin),
             // written forward, read backward; or null
  int64_t n_saved() const { return 6 * (R + 1) + 2 * (R * prog.n_rep + prog.n_fin); }
};

// The Bloch vector r = (x, y, z) of an edge as trigonometric polynomials in the input, each
// component c stored as complex coefficients c_k (k = 0..d; c_{-k} = conj(c_k)) in re/im arrays
// of L = R + 2 entries per component. Gradients use the same layout (G = dL/dRe + i dL/dIm).
template <class V> struct Poly {
  V* re;
  V* im;
  int64_t L;
  V* r(int c) const { return re + c * L; }
  V* i(int c) const { return im + c * L; }
};

// Rotation by the angle with (c, s) about `axis` of coefficients 0..d: (u, w) <- (c u - s w, s u + c w)
// on the two components after the axis in cyclic order. Orthogonal, so the inverse and the
// adjoint are the rotation with -s.
template <class V> QKAN_INLINE void rotate(const Poly<V>& p, int axis, V c, V s, int64_t d) {
  const int u = (axis + 1) % 3, w = (axis + 2) % 3;
  V *ur = p.r(u), *ui = p.i(u), *wr = p.r(w), *wi = p.i(w);
  for (int64_t k = 0; k <= d; ++k) {
    const V a = ur[k], b = wr[k], e = ui[k], f = wi[k];
    ur[k] = c * a - s * b, wr[k] = s * a + c * b;
    ui[k] = c * e - s * f, wi[k] = s * e + c * f;
  }
}

// Fixed gates as Bloch maps (their own inverse and adjoint): H (x, y, z) -> (z, -y, x),
// X -> (x, -y, -z), Z -> (-x, -y, z).
template <class V> QKAN_INLINE void fixed_gate(const Poly<V>& p, int64_t code, int64_t d) {
  for (int64_t k = 0; k <= d; ++k) {
    if (code == 3) {
      std::swap(p.r(0)[k], p.r(2)[k]), std::swap(p.i(0)[k], p.i(2)[k]);
      p.r(1)[k] = -p.r(1)[k], p.i(1)[k] = -p.i(1)[k];
    } else {
      for (int c = code == 4 ? 1 : 0; c < (code == 4 ? 3 : 2); ++c) p.r(c)[k] = -p.r(c)[k], p.i(c)[k] = -p.i(c)[k];
    }
  }
}

// The data rotation by x about `axis` (sign 1, degree d -> d + 1) or its inverse (sign -1,
// d -> d - 1): with u, w the components after the axis, U'_k = (U_{k-1} + U_{k+1}) / 2 +
// sign i (W_{k-1} - W_{k+1}) / 2, W'_k = (W_{k-1} + W_{k+1}) / 2 - sign i (U_{k-1} - U_{k+1}) / 2,
// where U_{-1} = conj(U_1) and entries beyond d are 0. tmp: 4 (d + 2) vectors.
template <class T, class V> QKAN_INLINE void encode(const Poly<V>& p, int axis, int64_t d, int sign, V* tmp) {
  const int u = (axis + 1) % 3, w = (axis + 2) % 3;
  V *ur = p.r(u), *ui = p.i(u), *wr = p.r(w), *wi = p.i(w);
  const V z = splat<T>(0);
  const T h = T(0.5), sh = T(0.5) * T(sign);
  const int64_t out = d + sign;
  auto at = [&](const V* a, int64_t k, bool imag) { return k < 0 ? (d >= 1 ? (imag ? -a[1] : a[1]) : z) : (k <= d ? a[k] : z); };
  for (int64_t k = 0; k <= out; ++k) {
    const V urm = at(ur, k - 1, false), uim = at(ui, k - 1, true), wrm = at(wr, k - 1, false), wim = at(wi, k - 1, true);
    const V urp = at(ur, k + 1, false), uip = at(ui, k + 1, true), wrp = at(wr, k + 1, false), wip = at(wi, k + 1, true);
    tmp[4 * k + 0] = h * (urm + urp) - sh * (wim - wip);
    tmp[4 * k + 1] = h * (uim + uip) + sh * (wrm - wrp);
    tmp[4 * k + 2] = h * (wrm + wrp) + sh * (uim - uip);
    tmp[4 * k + 3] = h * (wim + wip) - sh * (urm - urp);
  }
  for (int64_t k = 0; k <= out; ++k) ur[k] = tmp[4 * k], ui[k] = tmp[4 * k + 1], wr[k] = tmp[4 * k + 2], wi[k] = tmp[4 * k + 3];
  const int a = axis;
  if (sign > 0) p.r(a)[out] = z, p.i(a)[out] = z;
}

// Adjoint of encode(sign 1) from degree d to d + 1: G' (degree d + 1) -> G (degree d). tmp: 4 (d + 2).
template <class T, class V> QKAN_INLINE void encode_adjoint(const Poly<V>& g, int axis, int64_t d, V* tmp) {
  const int u = (axis + 1) % 3, w = (axis + 2) % 3;
  V *ur = g.r(u), *ui = g.i(u), *wr = g.r(w), *wi = g.i(w);
  const V z = splat<T>(0);
  const T h = T(0.5);
  for (int64_t k = 0; k < 4 * (d + 1); ++k) tmp[k] = z;
  for (int64_t kp = 0; kp <= d + 1; ++kp) {
    const V gur = ur[kp], gui = ui[kp], gwr = wr[kp], gwi = wi[kp];
    // to index kp - 1: cu = (gu + i gw) / 2, cw = (gw - i gu) / 2; to kp + 1: cu = (gu - i gw) / 2, cw = (gw + i gu) / 2
    const V cmur = h * (gur - gwi), cmui = h * (gui + gwr), cmwr = h * (gwr + gui), cmwi = h * (gwi - gur);
    if (kp >= 1) {
      V* t = tmp + 4 * (kp - 1);
      t[0] += cmur, t[1] += cmui, t[2] += cmwr, t[3] += cmwi;
    } else if (d >= 1) {  // U_{-1} = conj(U_1)
      V* t = tmp + 4;
      t[0] += cmur, t[1] -= cmui, t[2] += cmwr, t[3] -= cmwi;
    }
    if (kp + 1 <= d) {
      V* t = tmp + 4 * (kp + 1);
      t[0] += h * (gur + gwi), t[1] += h * (gui - gwr), t[2] += h * (gwr - gui), t[3] += h * (gwi + gur);
    }
  }
  for (int64_t k = 0; k <= d; ++k) ur[k] = tmp[4 * k], ui[k] = tmp[4 * k + 1], wr[k] = tmp[4 * k + 2], wi[k] = tmp[4 * k + 3];
  ur[d + 1] = z, ui[d + 1] = z, wr[d + 1] = z, wi[d + 1] = z;
  g.r(axis)[d + 1] = z, g.i(axis)[d + 1] = z;
}

// Edges e0.. (one vector of lanes). Forward: r = e_x (H|0>); per rep l its gates (slot l), the data
// rotation; the final gates (slot R); the Fourier coefficients are those of z: a0 = Re z_0,
// a_k = 2 Re z_k, b_k = -2 Im z_k. Backward: from the saved final state (or the forward again)
// back through every step, inverting the state as it goes (every step is invertible), with
// dL/dangle = sum_k Re(conj(G_u) (-w) + conj(G_w) u) at each gate's output. Scratch: see compile_run.
template <class T> QKAN_INLINE void compile_impl(const Compile<T>& J, int64_t e0, typename Vec<T>::V* scratch) {
  using V = typename Vec<T>::V;
  const int64_t R = J.R, L = R + 2, nk = J.n_slots * J.k;
  const Program& P = J.prog;
  const int axis = int(P.encoding);
  const Poly<V> st = {scratch, scratch + 3 * L, L}, gr = {scratch + 6 * L, scratch + 9 * L, L};
  V* tmp = scratch + 12 * L;
  V* cs = tmp + 4 * L;                   // (cos, sin) of every trainable gate, in program order
  V* gth = cs + 2 * J.n_slots * kMaxGates;  // dL/dtheta of the slot angles
  const V z = splat<T>(0);
  for (int64_t m = 0; m < 6 * L; ++m) scratch[m] = z;
  st.r(0)[0] = splat<T>(1);
  auto gates = [&](int64_t slot) { return slot < R ? P.rep : P.fin; };
  auto n_gates = [&](int64_t slot) { return slot < R ? P.n_rep : P.n_fin; };
  V* csp = cs;
  const int64_t n_cs = J.n_saved() - 6 * (R + 1);
  V* saved = J.saved ? reinterpret_cast<V*>(J.saved) + e0 / Vec<T>::W * J.n_saved() : nullptr;  // this vector's block
  auto slot_of = [&](int c, int64_t k) { return saved + c * (R + 1) + k; };                         // c: 0..2 re, 3..5 im
  if (J.backward && saved) {  // the forward's final state and angles
    for (int c = 0; c < 3; ++c)
      for (int64_t k = 0; k <= R; ++k) st.r(c)[k] = *slot_of(c, k), st.i(c)[k] = *slot_of(3 + c, k);
    for (int64_t m = 0; m < n_cs; ++m) cs[m] = *slot_of(6, m);
    csp += n_cs;
  } else {
    for (int64_t slot = 0; slot <= R; ++slot) {
      const int64_t d = slot, *g = gates(slot);
      for (int64_t j = 0; j < n_gates(slot); ++j, csp += 2) {
        if (g[2 * j + 1] < 0) {
          csp[0] = z, csp[1] = z;
          fixed_gate(st, g[2 * j], d);
          continue;
        }
        vsincos<T, true>(gather(J.theta + slot * J.k + g[2 * j + 1], e0, J.E, nk), csp[1], csp[0]);
        rotate(st, int(g[2 * j]), csp[0], csp[1], d);
      }
      if (slot < R) encode<T>(st, axis, d, 1, tmp);
    }
  }
  if (!J.backward && saved) {
    for (int c = 0; c < 3; ++c)
      for (int64_t k = 0; k <= R; ++k) *slot_of(c, k) = st.r(c)[k], *slot_of(3 + c, k) = st.i(c)[k];
    for (int64_t m = 0; m < n_cs; ++m) *slot_of(6, m) = cs[m];
  }
  if (!J.backward) {
    store(J.coeffs, e0, J.E, st.r(2)[0]);
    for (int64_t k = 1; k <= R; ++k) {
      store(J.coeffs + k * J.E, e0, J.E, T(2) * st.r(2)[k]);
      store(J.coeffs + (R + k) * J.E, e0, J.E, T(-2) * st.i(2)[k]);
    }
    return;
  }
  for (int64_t m = 0; m < 6 * L; ++m) gr.re[m] = z;
  for (int64_t m = 0; m < nk; ++m) gth[m] = z;
  gr.r(2)[0] = load_zero(J.g_coeffs, e0, J.E);
  for (int64_t k = 1; k <= R; ++k) {
    gr.r(2)[k] = T(2) * load_zero(J.g_coeffs + k * J.E, e0, J.E);
    gr.i(2)[k] = T(-2) * load_zero(J.g_coeffs + (R + k) * J.E, e0, J.E);
  }
  for (int64_t slot = R; slot >= 0; --slot) {
    const int64_t d = slot, *g = gates(slot);
    if (slot < R) {  // back through the data rotation: invert the state, adjoint for the gradient
      encode<T>(st, axis, d + 1, -1, tmp);
      encode_adjoint<T>(gr, axis, d, tmp);
    }
    for (int64_t j = n_gates(slot) - 1; j >= 0; --j) {
      csp -= 2;
      if (g[2 * j + 1] < 0) {
        fixed_gate(st, g[2 * j], d);
        fixed_gate(gr, g[2 * j], d);
        continue;
      }
      const int ax = int(g[2 * j]), u = (ax + 1) % 3, w = (ax + 2) % 3;
      V acc = z;
      for (int64_t k = 0; k <= d; ++k)
        acc += gr.r(w)[k] * st.r(u)[k] + gr.i(w)[k] * st.i(u)[k] - gr.r(u)[k] * st.r(w)[k] - gr.i(u)[k] * st.i(w)[k];
      gth[slot * J.k + g[2 * j + 1]] += acc;
      rotate(st, ax, csp[0], -csp[1], d);
      rotate(gr, ax, csp[0], -csp[1], d);
    }
  }
  for (int64_t m = 0; m < nk; ++m) scatter(J.g_theta + m, e0, J.E, nk, gth[m]);
}

template <class T> struct Features {
  int64_t N, I, K, slots, base, backward;
  const T* x;
  T* phi;
  const T* g_phi;
  T* g_x;
  T* sig;
};

// Rows n in [n0, n1), inputs as lanes. With `base` (silu), slot 2K holds silu(x) = x s(x),
// s = 1 / (1 + e^{-x}) (kept in sig (N, I)), whose derivative s (1 + x (1 - s)) enters dx.
template <class T> QKAN_INLINE void features_impl(const Features<T>& J, int64_t n0, int64_t n1) {
  using V = typename Vec<T>::V;
  constexpr int W = Vec<T>::W;
  const int64_t I = J.I, K = J.K;
  for (int64_t n = n0; n < n1; ++n) {
    const T* x = J.x + n * I;
    T* phi = J.phi + n * J.slots * I;
    for (int64_t i0 = 0; i0 < I; i0 += W) {
      const V xv = load(x, i0, I);
      V s1, c1;  // cos(k x), sin(k x) by the recurrence: computed again in backward (cheaper than reading phi)
      vsincos<T, true>(xv, s1, c1);
      V c = c1, s = s1;
      if (J.backward) {
        const T* g = J.g_phi + n * J.slots * I;
        V dx = splat<T>(0);
        for (int64_t k = 0; k < K; ++k) {
          if (k) {
            const V t = c * c1 - s * s1;
            s = s * c1 + c * s1;
            c = t;
          }
          dx += T(k + 1) * (load_zero(g + (K + k) * I, i0, I) * c - load_zero(g + k * I, i0, I) * s);
        }
        if (J.base) {
          const V sg = load(J.sig + n * I, i0, I);
          dx += load_zero(g + 2 * K * I, i0, I) * (sg * (T(1) + xv * (T(1) - sg)));
        }
        store(J.g_x + n * I, i0, I, dx);
        continue;
      }
      for (int64_t k = 0; k < K; ++k) {
        if (k) {
          const V t = c * c1 - s * s1;
          s = s * c1 + c * s1;
          c = t;
        }
        store(phi + k * I, i0, I, c);
        store(phi + (K + k) * I, i0, I, s);
      }
      if (J.base) {
        const V sg = T(1) / (T(1) + vexp<T>(-xv));
        store(J.sig + n * I, i0, I, sg);
        store(phi + 2 * K * I, i0, I, xv * sg);
      }
    }
  }
}

// The layer's weight matrix from the coefficients (1 + 2K, O', I') of every edge, O' in {1, O},
// I' in {1, I} (edges that share a circuit): W[o, k, i] = scale[o, i] coeffs[1 + k, o', i'],
// W[o, 2K, i] = base_w[o, i]; bias[o] = const[o] + sum_i scale[o, i] a0[o', i']. Backward from
// gW (O, S, I) and g_const (O): g_coeffs (accumulated over the edges sharing a circuit), g_scale, g_base_w.
template <class T> struct Weights {
  int64_t O, I, Og, Ig, K, S, backward;
  const T *coeffs, *scale, *cnst, *base_w, *gW, *g_const;
  T *W, *bias, *g_coeffs, *g_scale, *g_base_w;
};

// si: 1 for one circuit per input (I' = I), 0 when inputs share it (a compile-time stride, so the
// common case is a plain vector loop).
template <class T, int64_t si> QKAN_INLINE void weights_run(const Weights<T>& J) {
  const int64_t I = J.I, K = J.K, S = J.S, E = J.Og * J.Ig;
  if (J.backward) std::fill(J.g_coeffs, J.g_coeffs + (2 * K + 1) * E, T(0));
  for (int64_t o = 0; o < J.O; ++o) {
    const int64_t eo = J.Og == 1 ? 0 : o * J.Ig;
    const T* sc = J.scale + o * I;
    if (!J.backward) {
      T b = J.cnst[o];
      for (int64_t i = 0; i < I; ++i) b += sc[i] * J.coeffs[eo + si * i];
      J.bias[o] = b;
      for (int64_t k = 0; k < 2 * K; ++k) {
        const T* c = J.coeffs + (1 + k) * E + eo;
        T* w = J.W + (o * S + k) * I;
        for (int64_t i = 0; i < I; ++i) w[i] = sc[i] * c[si * i];
      }
      if (S > 2 * K) std::copy(J.base_w + o * I, J.base_w + (o + 1) * I, J.W + (o * S + 2 * K) * I);
      continue;
    }
    T* gs = J.g_scale + o * I;
    const T gc = J.g_const[o];
    for (int64_t i = 0; i < I; ++i) {
      gs[i] = gc * J.coeffs[eo + si * i];
      J.g_coeffs[eo + si * i] += gc * sc[i];
    }
    for (int64_t k = 0; k < 2 * K; ++k) {
      const T* c = J.coeffs + (1 + k) * E + eo;
      T* gcf = J.g_coeffs + (1 + k) * E + eo;
      const T* gw = J.gW + (o * S + k) * I;
      for (int64_t i = 0; i < I; ++i) {
        gs[i] += gw[i] * c[si * i];
        gcf[si * i] += gw[i] * sc[i];
      }
    }
    if (S > 2 * K && J.g_base_w) std::copy(J.gW + (o * S + 2 * K) * I, J.gW + (o * S + 2 * K + 1) * I, J.g_base_w + o * I);
  }
}

QKAN_CLONES void compile_f64(const Compile<double>& J, int64_t e0, int64_t e1, Vec<double>::V* scratch) {
  for (int64_t e = e0; e < e1; e += Vec<double>::W) compile_impl<double>(J, e, scratch);
}
QKAN_CLONES void compile_f32(const Compile<float>& J, int64_t e0, int64_t e1, Vec<float>::V* scratch) {
  for (int64_t e = e0; e < e1; e += Vec<float>::W) compile_impl<float>(J, e, scratch);
}
QKAN_CLONES void features_f64(const Features<double>& J, int64_t n0, int64_t n1) { features_impl<double>(J, n0, n1); }
QKAN_CLONES void features_f32(const Features<float>& J, int64_t n0, int64_t n1) { features_impl<float>(J, n0, n1); }
inline void compile_range(const Compile<double>& J, int64_t e0, int64_t e1, Vec<double>::V* s) { compile_f64(J, e0, e1, s); }
inline void compile_range(const Compile<float>& J, int64_t e0, int64_t e1, Vec<float>::V* s) { compile_f32(J, e0, e1, s); }
inline void features_range(const Features<double>& J, int64_t n0, int64_t n1) { features_f64(J, n0, n1); }
inline void features_range(const Features<float>& J, int64_t n0, int64_t n1) { features_f32(J, n0, n1); }
QKAN_CLONES void weights_f64(const Weights<double>& J) { J.Ig == 1 ? weights_run<double, 0>(J) : weights_run<double, 1>(J); }
QKAN_CLONES void weights_f32(const Weights<float>& J) { J.Ig == 1 ? weights_run<float, 0>(J) : weights_run<float, 1>(J); }
inline void weights_range(const Weights<double>& J) { weights_f64(J); }
inline void weights_range(const Weights<float>& J) { weights_f32(J); }

template <class T> int compile_run(const FourierCompileArgs& a) {
  using V = typename Vec<T>::V;
  constexpr int W = Vec<T>::W;
  Compile<T> J;
  J.E = a.E, J.R = a.R, J.n_slots = a.n_slots, J.k = a.k, J.backward = a.backward;
  J.prog = Program::parse(a.program);
  if (J.prog.n_rep > kMaxGates || J.prog.n_fin > kMaxGates) return 3;
  J.theta = static_cast<const T*>(a.theta);
  J.coeffs = static_cast<T*>(a.coeffs);
  J.g_coeffs = static_cast<const T*>(a.g_coeffs);
  J.g_theta = static_cast<T*>(a.g_theta);
  J.saved = static_cast<T*>(a.saved);
  if (reinterpret_cast<uintptr_t>(J.saved) % sizeof(V)) J.saved = nullptr;  // blocks are read as vectors: recompute instead
  const int64_t L = J.R + 2, chunks = (J.E + W - 1) / W;
  const int64_t n_scratch = 16 * L + 2 * J.n_slots * kMaxGates + J.n_slots * J.k + 1;
  // a thread per 256 edge vectors at least (~50 us forward for R = 3): starting one costs tens of us
  parallel(useful_threads(a.threads, chunks * L * L, 256 * 25), chunks, [&](int64_t, int64_t c0, int64_t c1) {
    std::vector<char> raw(n_scratch * sizeof(V));  // aligned by hand, as in su2_kernel.cpp
    V* scratch = reinterpret_cast<V*>((reinterpret_cast<uintptr_t>(raw.data()) + sizeof(V) - 1) / sizeof(V) * sizeof(V));
    compile_range(J, c0 * W, std::min(J.E, c1 * W), scratch);
  });
  return 0;
}

template <class T> int features_run(const FourierFeaturesArgs& a) {
  Features<T> J;
  J.N = a.N, J.I = a.I, J.K = a.K, J.slots = a.slots, J.base = a.base, J.backward = a.backward;
  J.x = static_cast<const T*>(a.x);
  J.phi = static_cast<T*>(a.phi);
  J.g_phi = static_cast<const T*>(a.g_phi);
  J.g_x = static_cast<T*>(a.g_x);
  J.sig = static_cast<T*>(a.sig);
  const int64_t per_row = std::max<int64_t>(1, J.I * (J.K + J.base));
  // a thread per ~2^16 features at least (~50 us)
  parallel(useful_threads(a.threads, J.N, 1 + (1 << 16) / per_row), J.N, [&](int64_t, int64_t n0, int64_t n1) { features_range(J, n0, n1); });
  return 0;
}

template <class T> int weights_call(const FourierWeightsArgs& a) {
  Weights<T> J;
  J.O = a.O, J.I = a.I, J.Og = a.Og, J.Ig = a.Ig, J.K = a.K, J.S = a.S, J.backward = a.backward;
  J.coeffs = static_cast<const T*>(a.coeffs), J.scale = static_cast<const T*>(a.scale), J.cnst = static_cast<const T*>(a.cnst);
  J.base_w = static_cast<const T*>(a.base_w), J.W = static_cast<T*>(a.W), J.bias = static_cast<T*>(a.bias);
  J.gW = static_cast<const T*>(a.g_W), J.g_const = static_cast<const T*>(a.g_const), J.g_coeffs = static_cast<T*>(a.g_coeffs);
  J.g_scale = static_cast<T*>(a.g_scale), J.g_base_w = static_cast<T*>(a.g_base_w);
  weights_range(J);
  return 0;
}

template <class F> int guarded(F f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return 1;
  } catch (const std::system_error&) {
    return 2;
  }
}

}  // namespace

extern "C" int qkan_fourier_compile(int double_precision, const FourierCompileArgs* args) {
  return guarded([&] { return double_precision ? compile_run<double>(*args) : compile_run<float>(*args); });
}

extern "C" int qkan_fourier_features(int double_precision, const FourierFeaturesArgs* args) {
  return guarded([&] { return double_precision ? features_run<double>(*args) : features_run<float>(*args); });
}

extern "C" int qkan_fourier_weights(int double_precision, const FourierWeightsArgs* args) {
  return guarded([&] { return double_precision ? weights_call<double>(*args) : weights_call<float>(*args); });
}
