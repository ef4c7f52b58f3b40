// Fused per-edge DARUAN kernel: forward and analytic backward of the SU(2) evaluator's
// per-sample part (qkan/simulators/su2.py `run`), for every edge (j, i) and sample n.
//
// The batch-independent part of each edge arrives prepared from torch as a real table
// (O, I, P): the state psi = (a, b) before the first data rotation, the 2x2 gates V_l between
// data rotations, and the readout M (the observable F^dag Z F for measure "z": m00, m01; the
// final gates F for "amplitude"). Per sample: b *= e^{i phi_l} (or phi + i sqrt(1 - phi^2) for
// the arccos encoding) for l = 0..R-1 with a V step before each rotation but the first, then
// the readout. Backward recomputes the forward per sample and runs the adjoint; per-edge
// gradients are summed in vector registers, dx in per-thread rows, so nothing of size N*O*I
// is stored. Samples are SIMD lanes (GCC vector extensions); on x86-64 an AVX2+FMA clone is
// chosen at run time. Results do not depend on the thread count beyond rounding: every y[n, j]
// is summed in one fixed order; only parameter and dx partial sums are split across threads.
//
// C ABI: qkan_su2(double_precision, const SU2Args*) (abi.h).

#include "circuit.h"

namespace {

using namespace qkan;

using Dims = SU2Args;  // sizes and flags; the data pointers are read typed, through Args

template <class T> struct Args {
  const T *x, *table, *w, *b, *scale;
  T* out;
  const T* gout;
  T *g_table, *g_w, *g_b, *g_scale, *g_x;
  const T* xmax;     // max |x| of every input row (I,)
  const T *er, *ei;  // phases e^{i phi} (I, R, N) when they do not depend on the output (enc 0, 1)
};

// The state after data rotation l and its phase, kept per sample block for the adjoint pass.
template <class T> struct Step {
  Qubit<typename Vec<T>::V> q;
  typename Vec<T>::V er, ei;
};

// Number of accumulators per edge in backward: table entries, then w and b per rep, then scale.
inline int64_t n_acc(const Dims& d) { return table_width(d.R, d.measure) + 2 * d.R + 1; }

// The phase of rep l for W samples: e = cos phi + i sin phi, or phi + i sqrt(1 - phi^2)
template <class T, bool Checked> QKAN_INLINE void phase(const Dims& d, typename Vec<T>::V phi, typename Vec<T>::V& er, typename Vec<T>::V& ei) {
  if (d.arccos) {
    er = phi;
    ei = vsqrt<T>(T(1) - phi * phi);
  } else {
    vsincos<T, Checked>(phi, ei, er);
  }
}

// Phases for encodings that do not depend on the output: rows i in [i0, i1).
template <class T> QKAN_INLINE void phases_impl(const Dims& d, const Args<T>& a, T* er, T* ei, int64_t i0, int64_t i1) {
  using V = typename Vec<T>::V;
  constexpr int W = Vec<T>::W;
  for (int64_t i = i0; i < i1; ++i) {
    for (int64_t l = 0; l < d.R; ++l) {
      T w = d.enc == 1 ? a.w[i * d.R + l] : T(1), b = d.enc == 1 ? a.b[i * d.R + l] : T(0);
      T* pr = er + (i * d.R + l) * d.N;
      T* pi = ei + (i * d.R + l) * d.N;
      for (int64_t n0 = 0; n0 < d.N; n0 += W) {
        V x = load(a.x + i * d.N, n0, d.N);
        V vr, vi;
        phase<T, true>(d, x * w + b, vr, vi);
        store(pr, n0, d.N, vr);
        store(pi, n0, d.N, vi);
      }
    }
  }
}

// One edge (j, i) over samples [n_begin, n_end); Checked: encoding angles may exceed the fast sin/cos range.
template <class T, bool Checked>
QKAN_INLINE void edge_impl(const Dims& d, const Args<T>& a, int64_t j, int64_t i, int64_t n_begin, int64_t n_end, typename Vec<T>::V* acc,
                           Step<T>* st, T* partial, T* gx) {
  using V = typename Vec<T>::V;
  constexpr int W = Vec<T>::W;
  const int64_t N = d.N, I = d.I, R = d.R, P = table_width(R, d.measure), NA = n_acc(d);
  const bool bwd = d.backward != 0, amp = d.measure == 1;
  const int64_t e = j * I + i;
  const T* p = a.table + e * P;
  const T* Mp = p + readout_row(R);
  const T scale = d.mode == 0 ? a.scale[e] : T(1);
  const T* ew = d.enc == 2 ? a.w + e * R : d.enc == 1 ? a.w + i * R : nullptr;
  const T* eb = d.enc == 2 ? a.b + e * R : nullptr;
  if (bwd)
    for (int64_t m = 0; m < NA; ++m) acc[m] = splat<T>(0);
  for (int64_t n0 = n_begin; n0 < n_end; n0 += W) {
    const V x = load(a.x + i * N, n0, N);
    Qubit<V> q = {splat<T>(p[0]), splat<T>(p[1]), splat<T>(p[2]), splat<T>(p[3])};
    for (int64_t l = 0; l < R; ++l) {
      if (l) q = apply(p + gate_row(l), q);
      V er, ei;
      if (d.enc == 2) {
        phase<T, Checked>(d, x * ew[l] + eb[l], er, ei);
      } else {
        er = load(a.er + (i * R + l) * N, n0, N);
        ei = load(a.ei + (i * R + l) * N, n0, N);
      }
      rotate(q, er, ei);
      if (bwd) st[l] = {q, er, ei};
    }
    const V f = readout<T>(Mp, amp, q);
    if (!bwd) {
      if (d.mode == 0) {
        T* y = a.out + j * N;
        store(y, n0, N, load_zero(y, n0, N) + scale * f);
      } else {
        store(a.out + e * N, n0, N, f);
      }
      continue;
    }
    V g;  // dL/df
    if (d.mode == 0) {
      const V gy = load_zero(a.gout + j * N, n0, N);
      acc[NA - 1] += gy * f;
      g = gy * scale;
    } else {
      g = load_zero(a.gout + e * N, n0, N);
    }
    Qubit<V> G = readout_backward<T>(Mp, amp, q, g, acc + readout_row(R));
    V dx = splat<T>(0);
    for (int64_t l = R - 1; l >= 0; --l) {
      const V dphi = rotate_backward(G, st[l].q, st[l].er, st[l].ei, d.arccos);
      acc[P + l] += x * dphi;  // w_l
      acc[P + R + l] += dphi;  // b_l
      dx += (ew ? ew[l] : T(1)) * dphi;
      if (l) {
        outer_acc(acc + gate_row(l), G, st[l - 1].q);
        G = apply_dagger(p + gate_row(l), G);
      }
    }
    acc[0] += G.ar, acc[1] += G.ai, acc[2] += G.br, acc[3] += G.bi;
    store(gx + i * N, n0, N, load_zero(gx + i * N, n0, N) + dx);
  }
  if (bwd) {
    T* out = partial + i * NA;
    for (int64_t m = 0; m < NA; ++m) {
      T sum = 0;
      for (int k = 0; k < W; ++k) sum += acc[m][k];
      out[m] = sum;
    }
  }
}

// Work item (j, chunk): output j, samples [n_begin, n_end) (multiples of W except at N), every input in order.
// acc: per-thread scratch of n_acc vectors; st: 6 R vectors; partial: this item's gradient sums (I, n_acc).
template <class T>
QKAN_INLINE void item_impl(const Dims& d, const Args<T>& a, int64_t j, int64_t n_begin, int64_t n_end, typename Vec<T>::V* acc,
                           Step<T>* st, T* partial, T* gx) {
  for (int64_t i = 0; i < d.I; ++i) {
    bool checked = false;  // |w_l x + b_l| <= |w_l| max|x| + |b_l| decides once per edge
    if (d.enc == 2 && !d.arccos) {
      for (int64_t l = 0; l < d.R; ++l) {
        const int64_t k = (j * d.I + i) * d.R + l;
        checked |= !(std::fabs(double(a.w[k])) * double(a.xmax[i]) + std::fabs(double(a.b[k])) <= 0.99 * double(Traits<T>::limit));
      }
    }
    if (checked)
      edge_impl<T, true>(d, a, j, i, n_begin, n_end, acc, st, partial, gx);
    else
      edge_impl<T, false>(d, a, j, i, n_begin, n_end, acc, st, partial, gx);
  }
}

QKAN_CLONES void phases_f64(const Dims& d, const Args<double>& a, double* er, double* ei, int64_t i0, int64_t i1) {
  phases_impl<double>(d, a, er, ei, i0, i1);
}
QKAN_CLONES void phases_f32(const Dims& d, const Args<float>& a, float* er, float* ei, int64_t i0, int64_t i1) {
  phases_impl<float>(d, a, er, ei, i0, i1);
}
QKAN_CLONES void item_f64(const Dims& d, const Args<double>& a, int64_t j, int64_t n0, int64_t n1, Vec<double>::V* acc,
                          Step<double>* st, double* partial, double* gx) {
  item_impl<double>(d, a, j, n0, n1, acc, st, partial, gx);
}
QKAN_CLONES void item_f32(const Dims& d, const Args<float>& a, int64_t j, int64_t n0, int64_t n1, Vec<float>::V* acc,
                          Step<float>* st, float* partial, float* gx) {
  item_impl<float>(d, a, j, n0, n1, acc, st, partial, gx);
}
inline void phases(const Dims& d, const Args<double>& a, double* er, double* ei, int64_t i0, int64_t i1) { phases_f64(d, a, er, ei, i0, i1); }
inline void phases(const Dims& d, const Args<float>& a, float* er, float* ei, int64_t i0, int64_t i1) { phases_f32(d, a, er, ei, i0, i1); }
inline void item(const Dims& d, const Args<double>& a, int64_t j, int64_t n0, int64_t n1, Vec<double>::V* acc, Step<double>* st,
                 double* partial, double* gx) {
  item_f64(d, a, j, n0, n1, acc, st, partial, gx);
}
inline void item(const Dims& d, const Args<float>& a, int64_t j, int64_t n0, int64_t n1, Vec<float>::V* acc, Step<float>* st,
                 float* partial, float* gx) {
  item_f32(d, a, j, n0, n1, acc, st, partial, gx);
}

template <class T> void run(const Dims& d, Args<T> a) {
  using V = typename Vec<T>::V;
  constexpr int W = Vec<T>::W;
  const int64_t N = d.N, O = d.O, I = d.I, R = d.R, P = table_width(R, d.measure), NA = n_acc(d);
  const int64_t T_ = useful_threads(d.threads, O * I * N * R, 1 << 15);  // units: rotations
  std::vector<T> xmax(I, T(0));
  for (int64_t i = 0; i < I; ++i)
    for (int64_t n = 0; n < N; ++n) xmax[i] = std::max(xmax[i], std::fabs(a.x[i * N + n]));
  a.xmax = xmax.data();
  std::vector<T> phase_buf;
  if (d.enc != 2 && N > 0) {
    phase_buf.resize(2 * I * R * N);
    a.er = phase_buf.data();
    a.ei = phase_buf.data() + I * R * N;
    parallel(T_, I, [&](int64_t, int64_t i0, int64_t i1) { phases(d, a, phase_buf.data(), phase_buf.data() + I * R * N, i0, i1); });
  }
  // items: (output j, sample chunk c); chunks only where outputs are fewer than threads
  const int64_t nvec = (N + W - 1) / W;
  const int64_t C = std::max<int64_t>(1, std::min<int64_t>(nvec, (2 * T_ + O - 1) / O));
  const int64_t items = O * C;
  if (d.mode == 0 && !d.backward) std::fill(a.out, a.out + O * N, T(0));
  std::vector<T> partial(d.backward ? items * I * NA : 0);
  const int64_t used = std::max<int64_t>(1, std::min(T_, items));
  std::vector<T> gx_buf(d.backward ? (used - 1) * I * N : 0);
  if (d.backward) std::fill(a.g_x, a.g_x + I * N, T(0));
  parallel(T_, items, [&](int64_t t, int64_t k0, int64_t k1) {
    // vector scratch, aligned by hand (std::allocator need not honour the vectors' alignment)
    std::vector<char> raw((NA + 6 * R + 1) * sizeof(V));
    V* acc = reinterpret_cast<V*>((reinterpret_cast<uintptr_t>(raw.data()) + sizeof(V) - 1) / sizeof(V) * sizeof(V));
    Step<T>* st = reinterpret_cast<Step<T>*>(acc + NA);  // 6 vectors each
    T* gx = t == 0 ? a.g_x : gx_buf.data() + (t - 1) * I * N;
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t j = k / C, c = k % C;
      const int64_t n0 = std::min(N, nvec * c / C * W), n1 = std::min(N, nvec * (c + 1) / C * W);
      item(d, a, j, n0, n1, acc, st, d.backward ? partial.data() + k * I * NA : nullptr, gx);
    }
  });
  if (!d.backward) return;
  for (int64_t t = 1; t < used; ++t) {
    const T* src = gx_buf.data() + (t - 1) * I * N;
    for (int64_t m = 0; m < I * N; ++m) a.g_x[m] += src[m];
  }
  for (int64_t j = 0; j < O; ++j) {
    for (int64_t i = 0; i < I; ++i) {
      const int64_t e = j * I + i;
      for (int64_t m = 0; m < NA; ++m) {
        T sum = 0;
        for (int64_t c = 0; c < C; ++c) sum += partial[((j * C + c) * I + i) * NA + m];
        if (m < P) {
          a.g_table[e * P + m] = sum;
        } else if (m < P + R) {
          if (a.g_w) a.g_w[e * R + m - P] = sum;
        } else if (m < P + 2 * R) {
          if (a.g_b) a.g_b[e * R + m - P - R] = sum;
        } else if (a.g_scale) {
          a.g_scale[e] = sum;
        }
      }
    }
  }
}

template <class T> Args<T> unpack(const SU2Args& s) {
  Args<T> a;
  a.x = static_cast<const T*>(s.x);
  a.table = static_cast<const T*>(s.table);
  a.w = static_cast<const T*>(s.w);
  a.b = static_cast<const T*>(s.b);
  a.scale = static_cast<const T*>(s.scale);
  a.out = static_cast<T*>(s.out);
  a.gout = static_cast<const T*>(s.g_out);
  a.g_table = static_cast<T*>(s.g_table);
  a.g_w = static_cast<T*>(s.g_w);
  a.g_b = static_cast<T*>(s.g_b);
  a.g_scale = static_cast<T*>(s.g_scale);
  a.g_x = static_cast<T*>(s.g_x);
  a.er = a.ei = nullptr;
  return a;
}

}  // namespace

extern "C" int qkan_su2(int double_precision, const SU2Args* args) {
  try {
    if (double_precision)
      run<double>(*args, unpack<double>(*args));
    else
      run<float>(*args, unpack<float>(*args));
  } catch (const std::bad_alloc&) {
    return 1;
  } catch (const std::system_error&) {
    return 2;
  }
  return 0;
}
