// Closed form (fixed encoding), forward and backward, for qkan/simulators/fourier.py.
//
// qkan_fourier_compile: prepared circuits (P, E) -> Fourier coefficients (1 + 2R, E), edges as
//   SIMD lanes. With v = e^{ix}, each rep multiplies b by v (in the data rotation's eigenframe),
//   so the amplitudes are polynomials: a(v) = sum_k alpha_k v^k, b(v) = sum_k beta_k v^k, and the
//   V steps mix their coefficient vectors. On |v| = 1, <Z> = m00 (|a|^2 - |b|^2) + 2 Re(m01
//   conj(a) b) has the coefficients F_d (v^d) = m00 (A_d - B_d) + m01 X_d + conj(m01 X_{-d}) with
//   A_d = sum_j alpha_{j+d} conj(alpha_j), B_d likewise, X_d = sum_j conj(alpha_j) beta_{j+d};
//   then a0 = F_0, a_d = 2 Re F_d, b_d = -2 Im F_d. O(R^2) per edge, exact; backward is the adjoint.
//   dims: E, R, backward, threads. ptrs: table (P, E) (measure "z"), coeffs (1 + 2R, E), g_coeffs, g_table.
//
// qkan_fourier_features: x (N, I) -> phi (N, slots, I) with phi[:, k-1] = cos(k x), phi[:, K+k-1] =
//   sin(k x) (k = 1..K; slots >= 2K, further slots untouched), by one sin/cos and the angle
//   addition recurrence; backward dx = sum_k k (g_sin cos(k x) - g_cos sin(k x)), read from phi.
//   With base 1 slot 2K holds silu(x) (the layer's base term, folded into the same product).
//   dims: N, I, K, slots, base, backward, threads. ptrs: x, phi, g_phi, g_x.
//
// qkan_fourier_weights: coefficients (1 + 2K, O', I') and the edge weights -> the layer's matrix
//   W (O, S, I) and bias (O) (see Weights below); backward to the coefficients and weights.
//   dims: O, I, O', I', K, S, backward. ptrs: coeffs, scale (O, I), const (O), base_w (O, I) or
//   null, W, bias, gW, g_const, g_coeffs, g_scale, g_base_w.

#include "circuit.h"

namespace {

using namespace qkan;

template <class T> struct Compile {
  int64_t E, R, backward;
  const T* table;
  T* coeffs;
  const T* g_coeffs;
  T* g_table;
  int64_t P() const { return 4 + 8 * (R - 1) + 3; }
};

template <class V> struct Cx {
  V r, i;
};
template <class V> QKAN_INLINE Cx<V> cmul(Cx<V> a, Cx<V> b) { return {a.r * b.r - a.i * b.i, a.r * b.i + a.i * b.r}; }
template <class V> QKAN_INLINE Cx<V> cmulc(Cx<V> a, Cx<V> b) { return {a.r * b.r + a.i * b.i, a.i * b.r - a.r * b.i}; }  // a conj(b)
template <class V> QKAN_INLINE Cx<V> conj(Cx<V> a) { return {a.r, -a.i}; }
template <class V> QKAN_INLINE void cadd(Cx<V>& a, Cx<V> b) { a.r += b.r, a.i += b.i; }

// W edges from e0. Scratch: P table vectors, P gradient vectors, R snapshots of the polynomial
// coefficients (alpha_k, beta_k for k = 0..R as Qubit entries), X and its gradient (2R+1 complex
// each), and the gradient of the final coefficients (R+1 Qubit entries).
template <class T> QKAN_INLINE void compile_impl(const Compile<T>& J, int64_t e0, typename Vec<T>::V* scratch) {
  using V = typename Vec<T>::V;
  using C = Cx<V>;
  const int64_t P = J.P(), R = J.R, L = R + 1;
  V* tab = scratch;
  V* acc = scratch + P;
  Qubit<V>* snap = reinterpret_cast<Qubit<V>*>(scratch + 2 * P);  // (R, L): (alpha_k, beta_k) after rep l
  C* X = reinterpret_cast<C*>(snap + R * L);                        // X_d at X[R + d], d = -R..R
  C* GX = X + 2 * R + 1;
  for (int64_t m = 0; m < P; ++m) tab[m] = load(J.table + m * J.E, e0, J.E);
  const V* Mp = tab + 4 + 8 * (R - 1);
  const V z = splat<T>(0);
  // forward: the coefficient polynomials after every rep
  Qubit<V>* q = snap;
  for (int64_t k = 0; k < L; ++k) q[k] = {z, z, z, z};
  q[0] = {tab[0], tab[1], tab[2], tab[3]};
  for (int64_t l = 0; l < R; ++l) {
    Qubit<V>* cur = snap + l * L;
    if (l) {
      const Qubit<V>* prev = cur - L;
      for (int64_t k = 0; k < L; ++k) cur[k] = k <= l ? apply(tab + 4 + 8 * (l - 1), prev[k]) : Qubit<V>{z, z, z, z};
    }
    for (int64_t k = l + 1; k > 0; --k) cur[k].br = cur[k - 1].br, cur[k].bi = cur[k - 1].bi;  // b *= v
    cur[0].br = z, cur[0].bi = z;
  }
  const Qubit<V>* s = snap + (R - 1) * L;  // final: alpha_0..R-1, beta_1..R
  const C m01 = {Mp[1], Mp[2]};
  for (int64_t d = -R; d <= R; ++d) {  // X_d = sum_j conj(alpha_j) beta_{j+d}
    C x = {z, z};
    for (int64_t j = std::max<int64_t>(0, -d); j < L && j + d < L; ++j) cadd(x, cmulc(C{s[j + d].br, s[j + d].bi}, C{s[j].ar, s[j].ai}));
    X[R + d] = x;
  }
  if (!J.backward) {
    for (int64_t d = 0; d <= R; ++d) {
      C ab = {z, z};  // A_d - B_d
      for (int64_t j = 0; j + d < L; ++j) {
        cadd(ab, cmulc(C{s[j + d].ar, s[j + d].ai}, C{s[j].ar, s[j].ai}));
        const C b = cmulc(C{s[j + d].br, s[j + d].bi}, C{s[j].br, s[j].bi});
        ab.r -= b.r, ab.i -= b.i;
      }
      C f = {Mp[0] * ab.r, Mp[0] * ab.i};
      cadd(f, cmul(m01, X[R + d]));
      cadd(f, conj(cmul(m01, X[R - d])));
      if (d == 0) {
        store(J.coeffs, e0, J.E, f.r);
      } else {
        store(J.coeffs + d * J.E, e0, J.E, T(2) * f.r);
        store(J.coeffs + (R + d) * J.E, e0, J.E, T(-2) * f.i);
      }
    }
    return;
  }
  for (int64_t m = 0; m < P; ++m) acc[m] = z;
  for (int64_t d = 0; d < 2 * R + 1; ++d) GX[d] = {z, z};
  // gradients of the final polynomials: G (alpha_k, beta_k) as Qubit entries
  Qubit<V>* G = reinterpret_cast<Qubit<V>*>(GX + 2 * R + 1);
  for (int64_t k = 0; k < L; ++k) G[k] = {z, z, z, z};
  V* accM = acc + 4 + 8 * (R - 1);
  for (int64_t d = 0; d <= R; ++d) {
    C GF;  // dL/dF_d: a0 = Re F_0; a_d = 2 Re F_d, b_d = -2 Im F_d
    if (d == 0) {
      GF = {load_zero(J.g_coeffs, e0, J.E), z};
    } else {
      GF = {T(2) * load_zero(J.g_coeffs + d * J.E, e0, J.E), T(-2) * load_zero(J.g_coeffs + (R + d) * J.E, e0, J.E)};
    }
    // F_d = m00 (A_d - B_d) + m01 X_d + conj(m01 X_{-d})
    const C GY = conj(GF);  // gradient of Y = m01 X_{-d}
    cadd(GX[R + d], cmulc(GF, m01));   // conj(m01) G_F
    cadd(GX[R - d], cmulc(GY, m01));
    const C gm01a = cmulc(GF, X[R + d]), gm01b = cmulc(GY, X[R - d]);  // G conj(X)
    accM[1] += gm01a.r + gm01b.r, accM[2] += gm01a.i + gm01b.i;
    const C GA = {Mp[0] * GF.r, Mp[0] * GF.i};
    for (int64_t j = 0; j + d < L; ++j) {  // A_d = sum_j alpha_{j+d} conj(alpha_j), B_d likewise, with G_B = -G_A
      const C aj = {s[j].ar, s[j].ai}, ajd = {s[j + d].ar, s[j + d].ai}, bj = {s[j].br, s[j].bi}, bjd = {s[j + d].br, s[j + d].bi};
      const C ga1 = cmul(GA, aj), ga2 = cmul(conj(GA), ajd), gb1 = cmul(GA, bj), gb2 = cmul(conj(GA), bjd);
      G[j + d].ar += ga1.r, G[j + d].ai += ga1.i, G[j].ar += ga2.r, G[j].ai += ga2.i;
      G[j + d].br -= gb1.r, G[j + d].bi -= gb1.i, G[j].br -= gb2.r, G[j].bi -= gb2.i;
      const C ab = cmulc(ajd, aj), bb = cmulc(bjd, bj);  // m00 is real: dL/dm00 = Re(conj(G_F) (A_d - B_d))
      accM[0] += GF.r * (ab.r - bb.r) + GF.i * (ab.i - bb.i);
    }
  }
  for (int64_t d = -R; d <= R; ++d) {  // X_d = sum_j conj(alpha_j) beta_{j+d}
    const C gx = GX[R + d];
    for (int64_t j = std::max<int64_t>(0, -d); j < L && j + d < L; ++j) {
      const C aj = {s[j].ar, s[j].ai}, bjd = {s[j + d].br, s[j + d].bi};
      const C ga = cmul(conj(gx), bjd), gb = cmul(gx, aj);
      G[j].ar += ga.r, G[j].ai += ga.i, G[j + d].br += gb.r, G[j + d].bi += gb.i;
    }
  }
  for (int64_t l = R - 1; l >= 0; --l) {  // adjoint of the reps
    for (int64_t k = 0; k <= l; ++k) G[k].br = G[k + 1].br, G[k].bi = G[k + 1].bi;  // undo b *= v
    G[l + 1].br = z, G[l + 1].bi = z;
    if (l) {
      const V* v = tab + 4 + 8 * (l - 1);
      const Qubit<V>* prev = snap + (l - 1) * L;
      for (int64_t k = 0; k <= l; ++k) {
        outer_acc(acc + 4 + 8 * (l - 1), G[k], prev[k]);
        G[k] = apply_dagger(v, G[k]);
      }
    }
  }
  acc[0] += G[0].ar, acc[1] += G[0].ai, acc[2] += G[0].br, acc[3] += G[0].bi;
  for (int64_t m = 0; m < P; ++m) store(J.g_table + m * J.E, e0, J.E, acc[m]);
}

template <class T> struct Features {
  int64_t N, I, K, slots, base, backward;
  const T* x;
  T* phi;
  const T* g_phi;
  T* g_x;
};

// Rows n in [n0, n1), inputs as lanes. With `base` (silu), slot 2K holds silu(x) = x s(x),
// s = 1 / (1 + e^{-x}), whose derivative s (1 + x (1 - s)) enters dx.
template <class T> QKAN_INLINE void features_impl(const Features<T>& J, int64_t n0, int64_t n1) {
  using V = typename Vec<T>::V;
  constexpr int W = Vec<T>::W;
  const int64_t I = J.I, K = J.K;
  for (int64_t n = n0; n < n1; ++n) {
    const T* x = J.x + n * I;
    T* phi = J.phi + n * J.slots * I;
    for (int64_t i0 = 0; i0 < I; i0 += W) {
      const V xv = load(x, i0, I);
      if (J.backward) {
        const T* g = J.g_phi + n * J.slots * I;
        V dx = splat<T>(0);
        for (int64_t k = 0; k < K; ++k) {
          const V c = load(phi + k * I, i0, I), s = load(phi + (K + k) * I, i0, I);
          dx += T(k + 1) * (load_zero(g + (K + k) * I, i0, I) * c - load_zero(g + k * I, i0, I) * s);
        }
        if (J.base) {
          const V sg = T(1) / (T(1) + vexp<T>(-xv));
          dx += load_zero(g + 2 * K * I, i0, I) * (sg * (T(1) + xv * (T(1) - sg)));
        }
        store(J.g_x + n * I, i0, I, dx);
        continue;
      }
      V s1, c1;
      vsincos<T, true>(xv, s1, c1);
      V c = c1, s = s1;
      for (int64_t k = 0; k < K; ++k) {
        if (k) {
          const V t = c * c1 - s * s1;
          s = s * c1 + c * s1;
          c = t;
        }
        store(phi + k * I, i0, I, c);
        store(phi + (K + k) * I, i0, I, s);
      }
      if (J.base) store(phi + 2 * K * I, i0, I, xv / (T(1) + vexp<T>(-xv)));
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

template <class T> int compile_run(const int64_t* dims, void* const* ptrs) {
  using V = typename Vec<T>::V;
  constexpr int W = Vec<T>::W;
  Compile<T> J;
  J.E = dims[0], J.R = dims[1], J.backward = dims[2];
  J.table = static_cast<const T*>(ptrs[0]);
  J.coeffs = static_cast<T*>(ptrs[1]);
  J.g_coeffs = static_cast<const T*>(ptrs[2]);
  J.g_table = static_cast<T*>(ptrs[3]);
  const int64_t R = J.R, chunks = (J.E + W - 1) / W;
  const int64_t n_scratch = 2 * J.P() + 4 * R * (R + 1) + 4 * (2 * R + 1) + 4 * (R + 1) + 1;
  parallel(useful_threads(dims[3], chunks, 32), chunks, [&](int64_t, int64_t c0, int64_t c1) {
    std::vector<char> raw(n_scratch * sizeof(V));  // aligned by hand, as in su2_kernel.cpp
    V* scratch = reinterpret_cast<V*>((reinterpret_cast<uintptr_t>(raw.data()) + sizeof(V) - 1) / sizeof(V) * sizeof(V));
    compile_range(J, c0 * W, std::min(J.E, c1 * W), scratch);
  });
  return 0;
}

template <class T> int features_run(const int64_t* dims, void* const* ptrs) {
  Features<T> J;
  J.N = dims[0], J.I = dims[1], J.K = dims[2], J.slots = dims[3], J.base = dims[4], J.backward = dims[5];
  J.x = static_cast<const T*>(ptrs[0]);
  J.phi = static_cast<T*>(ptrs[1]);
  J.g_phi = static_cast<const T*>(ptrs[2]);
  J.g_x = static_cast<T*>(ptrs[3]);
  const int64_t per_row = std::max<int64_t>(1, J.I * (J.K + J.base));
  parallel(useful_threads(dims[6], J.N, 1 + (1 << 13) / per_row), J.N, [&](int64_t, int64_t n0, int64_t n1) { features_range(J, n0, n1); });
  return 0;
}

template <class T> int weights_call(const int64_t* dims, void* const* ptrs) {
  Weights<T> J;
  J.O = dims[0], J.I = dims[1], J.Og = dims[2], J.Ig = dims[3], J.K = dims[4], J.S = dims[5], J.backward = dims[6];
  auto in = [&](int m) { return static_cast<const T*>(ptrs[m]); };
  auto out = [&](int m) { return static_cast<T*>(ptrs[m]); };
  J.coeffs = in(0), J.scale = in(1), J.cnst = in(2), J.base_w = in(3), J.W = out(4), J.bias = out(5);
  J.gW = in(6), J.g_const = in(7), J.g_coeffs = out(8), J.g_scale = out(9), J.g_base_w = out(10);
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

extern "C" int qkan_fourier_compile(int double_precision, const int64_t* dims, void* const* ptrs) {
  return guarded([&] { return double_precision ? compile_run<double>(dims, ptrs) : compile_run<float>(dims, ptrs); });
}

extern "C" int qkan_fourier_features(int double_precision, const int64_t* dims, void* const* ptrs) {
  return guarded([&] { return double_precision ? features_run<double>(dims, ptrs) : features_run<float>(dims, ptrs); });
}

extern "C" int qkan_fourier_weights(int double_precision, const int64_t* dims, void* const* ptrs) {
  return guarded([&] { return double_precision ? weights_call<double>(dims, ptrs) : weights_call<float>(dims, ptrs); });
}
