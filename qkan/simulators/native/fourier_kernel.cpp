// Closed form (fixed encoding), forward and backward, for qkan/simulators/fourier.py.
//
// qkan_fourier_compile: prepared circuits (P, E) -> Fourier coefficients (C, E), edges as SIMD
//   lanes. Each edge is evaluated at the S sample angles x_s (the same in every rep, see
//   fourier._sampling) and one real DFT D (C, S) reads the coefficients off. Backward: the
//   gradient of f(x_s) is D^T g, then the circuit's adjoint back to the table.
//   dims: E, R, S, C, measure (must be 0), backward, threads.
//   ptrs: table (P, E), D (C, S), cs (2, S) = [cos x_s; sin x_s], coeffs (C, E), g_coeffs (C, E), g_table (P, E).
//
// qkan_fourier_features: x (N, I) -> phi (N, slots, I) with phi[:, k-1] = cos(k x), phi[:, K+k-1] =
//   sin(k x) (k = 1..K; slots >= 2K, further slots untouched), by one sin/cos and the angle
//   addition recurrence; backward dx = sum_k k (g_sin cos(k x) - g_cos sin(k x)), read from phi.
//   dims: N, I, K, slots, backward, threads. ptrs: x, phi, g_phi, g_x.

#include "circuit.h"

namespace {

using namespace qkan;

template <class T> struct Compile {
  int64_t E, R, S, C, backward;
  const T *table, *D, *cs;
  T* coeffs;
  const T* g_coeffs;
  T* g_table;
  int64_t P() const { return 4 + 8 * (R - 1) + 3; }
};

// W edges from e0: scratch holds P table vectors, P gradient vectors and R states.
template <class T> QKAN_INLINE void compile_impl(const Compile<T>& J, int64_t e0, typename Vec<T>::V* scratch) {
  using V = typename Vec<T>::V;
  const int64_t P = J.P(), R = J.R;
  V* tab = scratch;
  V* acc = scratch + P;
  Qubit<V>* st = reinterpret_cast<Qubit<V>*>(scratch + 2 * P);
  for (int64_t m = 0; m < P; ++m) tab[m] = load(J.table + m * J.E, e0, J.E);
  const V* Mp = tab + 4 + 8 * (R - 1);
  if (J.backward)
    for (int64_t m = 0; m < P; ++m) acc[m] = splat<T>(0);
  V coeffs[64];  // C <= 64 (checked by the caller)
  for (int64_t c = 0; c < J.C; ++c) coeffs[c] = splat<T>(0);
  for (int64_t s = 0; s < J.S; ++s) {
    const V er = splat<T>(J.cs[s]), ei = splat<T>(J.cs[J.S + s]);
    Qubit<V> q = {tab[0], tab[1], tab[2], tab[3]};
    for (int64_t l = 0; l < R; ++l) {
      if (l) q = apply(tab + 4 + 8 * (l - 1), q);
      rotate(q, er, ei);
      st[l] = q;
    }
    if (!J.backward) {
      const V f = readout<T>(Mp, false, q);
      for (int64_t c = 0; c < J.C; ++c) coeffs[c] += J.D[c * J.S + s] * f;
      continue;
    }
    V g = splat<T>(0);  // dL/df(x_s) = sum_c D[c, s] g_c
    for (int64_t c = 0; c < J.C; ++c) g += J.D[c * J.S + s] * load_zero(J.g_coeffs + c * J.E, e0, J.E);
    Qubit<V> G = readout_backward<T>(Mp, false, q, g, acc + 4 + 8 * (R - 1));
    for (int64_t l = R - 1; l >= 0; --l) {
      rotate_backward(G, st[l], er, ei, false);
      if (l) {
        outer_acc(acc + 4 + 8 * (l - 1), G, st[l - 1]);
        G = apply_dagger(tab + 4 + 8 * (l - 1), G);
      }
    }
    acc[0] += G.ar, acc[1] += G.ai, acc[2] += G.br, acc[3] += G.bi;
  }
  if (J.backward) {
    for (int64_t m = 0; m < P; ++m) store(J.g_table + m * J.E, e0, J.E, acc[m]);
  } else {
    for (int64_t c = 0; c < J.C; ++c) store(J.coeffs + c * J.E, e0, J.E, coeffs[c]);
  }
}

template <class T> struct Features {
  int64_t N, I, K, slots, backward;
  const T* x;
  T* phi;
  const T* g_phi;
  T* g_x;
};

// Rows n in [n0, n1), inputs as lanes.
template <class T> QKAN_INLINE void features_impl(const Features<T>& J, int64_t n0, int64_t n1) {
  using V = typename Vec<T>::V;
  constexpr int W = Vec<T>::W;
  const int64_t I = J.I, K = J.K;
  for (int64_t n = n0; n < n1; ++n) {
    const T* x = J.x + n * I;
    T* phi = J.phi + n * J.slots * I;
    for (int64_t i0 = 0; i0 < I; i0 += W) {
      if (J.backward) {
        const T* g = J.g_phi + n * J.slots * I;
        V dx = splat<T>(0);
        for (int64_t k = 0; k < K; ++k) {
          const V c = load(phi + k * I, i0, I), s = load(phi + (K + k) * I, i0, I);
          dx += T(k + 1) * (load_zero(g + (K + k) * I, i0, I) * c - load_zero(g + k * I, i0, I) * s);
        }
        store(J.g_x + n * I, i0, I, dx);
        continue;
      }
      V s1, c1;
      vsincos<T, true>(load(x, i0, I), s1, c1);
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
    }
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

template <class T> int compile_run(const int64_t* dims, void* const* ptrs) {
  using V = typename Vec<T>::V;
  constexpr int W = Vec<T>::W;
  Compile<T> J;
  J.E = dims[0], J.R = dims[1], J.S = dims[2], J.C = dims[3], J.backward = dims[5];
  if (dims[4] != 0 || J.C > 64) return 3;
  J.table = static_cast<const T*>(ptrs[0]);
  J.D = static_cast<const T*>(ptrs[1]);
  J.cs = static_cast<const T*>(ptrs[2]);
  J.coeffs = static_cast<T*>(ptrs[3]);
  J.g_coeffs = static_cast<const T*>(ptrs[4]);
  J.g_table = static_cast<T*>(ptrs[5]);
  const int64_t chunks = (J.E + W - 1) / W, n_scratch = 2 * J.P() + 4 * J.R + 1;
  parallel(dims[6], chunks, [&](int64_t, int64_t c0, int64_t c1) {
    std::vector<char> raw(n_scratch * sizeof(V));  // aligned by hand, as in su2_kernel.cpp
    V* scratch = reinterpret_cast<V*>((reinterpret_cast<uintptr_t>(raw.data()) + sizeof(V) - 1) / sizeof(V) * sizeof(V));
    compile_range(J, c0 * W, std::min(J.E, c1 * W), scratch);
  });
  return 0;
}

template <class T> int features_run(const int64_t* dims, void* const* ptrs) {
  Features<T> J;
  J.N = dims[0], J.I = dims[1], J.K = dims[2], J.slots = dims[3], J.backward = dims[4];
  J.x = static_cast<const T*>(ptrs[0]);
  J.phi = static_cast<T*>(ptrs[1]);
  J.g_phi = static_cast<const T*>(ptrs[2]);
  J.g_x = static_cast<T*>(ptrs[3]);
  parallel(dims[5], J.N, [&](int64_t, int64_t n0, int64_t n1) { features_range(J, n0, n1); });
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
