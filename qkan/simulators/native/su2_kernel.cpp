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
// C ABI (ctypes): qkan_su2(double_precision, dims[10], ptrs[12]) -> 0, or 1 on allocation failure.
//   dims: N, O, I, R, measure (0 z, 1 amplitude), enc (0 phi = x, 1 per input w, b (I, R),
//         2 per edge (O, I, R)), arccos, mode (0: y (O, N) = sum_i scale f, 1: edges (O, I, N)),
//         threads, backward.
//   ptrs: x (I, N), table (O, I, P), w, b, scale (O, I), out, gout (like out),
//         g_table (O, I, P), g_w (O, I, R), g_b (O, I, R), g_scale (O, I), g_x (I, N).
//   Inputs are contiguous and transposed so that samples are the innermost dimension.

#include "simd.h"

namespace {

using namespace qkan;

struct Dims {
  int64_t N, O, I, R, measure, enc, arccos, mode, threads, backward;
  int64_t P() const { return 4 + 8 * (R - 1) + (measure == 0 ? 3 : 8); }
};

template <class T> struct Args {
  const T *x, *table, *w, *b, *scale;
  T* out;
  const T* gout;
  T *g_table, *g_w, *g_b, *g_scale, *g_x;
  const T* xmax;     // max |x| of every input row (I,)
  const T *er, *ei;  // phases e^{i phi} (I, R, N) when they do not depend on the output (enc 0, 1)
};

// Number of accumulators per edge in backward: table entries, then w and b per rep, then scale.
inline int64_t n_acc(const Dims& d) { return d.P() + 2 * d.R + 1; }

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
                           typename Vec<T>::V* st, T* partial, T* gx) {
  using V = typename Vec<T>::V;
  constexpr int W = Vec<T>::W;
  const int64_t N = d.N, I = d.I, R = d.R, P = d.P(), NA = n_acc(d);
  const bool bwd = d.backward != 0, amp = d.measure == 1;
  const int64_t e = j * I + i;
  const T* p = a.table + e * P;
  const T* Mp = p + 4 + 8 * (R - 1);
  const T scale = d.mode == 0 ? a.scale[e] : T(1);
  const T* ew = d.enc == 2 ? a.w + e * R : d.enc == 1 ? a.w + i * R : nullptr;
  const T* eb = d.enc == 2 ? a.b + e * R : nullptr;
  if (bwd)
    for (int64_t m = 0; m < NA; ++m) acc[m] = splat<T>(0);
  for (int64_t n0 = n_begin; n0 < n_end; n0 += W) {
    V x = load(a.x + i * N, n0, N);
    V ar = splat<T>(p[0]), ai = splat<T>(p[1]), br = splat<T>(p[2]), bi = splat<T>(p[3]);
    for (int64_t l = 0; l < R; ++l) {
      if (l) {
        const T* v = p + 4 + 8 * (l - 1);
        V nar = v[0] * ar - v[1] * ai + v[2] * br - v[3] * bi;
        V nai = v[0] * ai + v[1] * ar + v[2] * bi + v[3] * br;
        V nbr = v[4] * ar - v[5] * ai + v[6] * br - v[7] * bi;
        V nbi = v[4] * ai + v[5] * ar + v[6] * bi + v[7] * br;
        ar = nar, ai = nai, br = nbr, bi = nbi;
      }
      V er, ei;
      if (d.enc == 2) {
        phase<T, Checked>(d, x * ew[l] + eb[l], er, ei);
      } else {
        er = load(a.er + (i * R + l) * N, n0, N);
        ei = load(a.ei + (i * R + l) * N, n0, N);
      }
      V t = br * er - bi * ei;
      bi = br * ei + bi * er;
      br = t;
      if (bwd) {
        V* s = st + 6 * l;
        s[0] = ar, s[1] = ai, s[2] = br, s[3] = bi, s[4] = er, s[5] = ei;
      }
    }
    // readout
    V f, Gar, Gai, Gbr, Gbi;
    V ua_r, ua_i, ub_r, ub_i, na, nb;  // amplitude: a' = m00 a + m01 b, b' = m10 a + m11 b
    if (!amp) {
      V cr = Mp[1] * br - Mp[2] * bi, ci = Mp[1] * bi + Mp[2] * br;  // m01 b
      f = Mp[0] * (ar * ar + ai * ai - br * br - bi * bi) + T(2) * (ar * cr + ai * ci);
    } else {
      const T* m = Mp;
      ua_r = m[0] * ar - m[1] * ai + m[2] * br - m[3] * bi;
      ua_i = m[0] * ai + m[1] * ar + m[2] * bi + m[3] * br;
      ub_r = m[4] * ar - m[5] * ai + m[6] * br - m[7] * bi;
      ub_i = m[4] * ai + m[5] * ar + m[6] * bi + m[7] * br;
      na = vsqrt<T>(ua_r * ua_r + ua_i * ua_i);
      nb = vsqrt<T>(ub_r * ub_r + ub_i * ub_i);
      f = na - nb;
    }
    if (!bwd) {
      if (d.mode == 0) {
        T* y = a.out + j * N;
        store(y, n0, N, load_zero(y, n0, N) + scale * f);
      } else {
        store(a.out + e * N, n0, N, f);
      }
      continue;
    }
    // backward: g = dL/df
    V g;
    if (d.mode == 0) {
      V gy = load_zero(a.gout + j * N, n0, N);
      acc[NA - 1] += gy * f;
      g = gy * scale;
    } else {
      g = load_zero(a.gout + e * N, n0, N);
    }
    V* accM = acc + 4 + 8 * (R - 1);
    if (!amp) {  // G = 2 g M psi; dM00 = g (|a|^2 - |b|^2); dM01 = 2 g a conj(b)
      const T m00 = Mp[0], m1r = Mp[1], m1i = Mp[2];
      V g2 = g + g;
      Gar = g2 * (m00 * ar + m1r * br - m1i * bi);
      Gai = g2 * (m00 * ai + m1r * bi + m1i * br);
      Gbr = g2 * (m1r * ar + m1i * ai - m00 * br);
      Gbi = g2 * (m1r * ai - m1i * ar - m00 * bi);
      accM[0] += g * (ar * ar + ai * ai - br * br - bi * bi);
      accM[1] += g2 * (ar * br + ai * bi);
      accM[2] += g2 * (ai * br - ar * bi);
    } else {  // G_a' = g a'/|a'|, G_b' = -g b'/|b'|; G_psi = M^dag G'; dM_rc = G'_r conj(psi_c)
      V za = na > 0 ? g / na : splat<T>(0);
      V zb = nb > 0 ? -g / nb : splat<T>(0);
      V gar = za * ua_r, gai = za * ua_i, gbr = zb * ub_r, gbi = zb * ub_i;
      const T* m = Mp;
      Gar = m[0] * gar + m[1] * gai + m[4] * gbr + m[5] * gbi;
      Gai = m[0] * gai - m[1] * gar + m[4] * gbi - m[5] * gbr;
      Gbr = m[2] * gar + m[3] * gai + m[6] * gbr + m[7] * gbi;
      Gbi = m[2] * gai - m[3] * gar + m[6] * gbi - m[7] * gbr;
      V gr[2] = {gar, gbr}, gi[2] = {gai, gbi};
      for (int r = 0; r < 2; ++r) {
        accM[4 * r + 0] += gr[r] * ar + gi[r] * ai;  // G'_r conj(a)
        accM[4 * r + 1] += gi[r] * ar - gr[r] * ai;
        accM[4 * r + 2] += gr[r] * br + gi[r] * bi;  // G'_r conj(b)
        accM[4 * r + 3] += gi[r] * br - gr[r] * bi;
      }
    }
    V dx = splat<T>(0);
    for (int64_t l = R - 1; l >= 0; --l) {
      const V* s = st + 6 * l;
      const V bor = s[2], boi = s[3], er = s[4], ei = s[5];
      V dphi;
      if (!d.arccos) {
        dphi = Gbi * bor - Gbr * boi;
      } else {  // G_e = conj(b_in) G_b with b_in = b_out conj(e); dL/dp = Re G_e - Im G_e p / sqrt(1 - p^2)
        V bir = bor * er + boi * ei, bii = boi * er - bor * ei;
        V Ger = bir * Gbr + bii * Gbi, Gei = bir * Gbi - bii * Gbr;
        dphi = Ger - Gei * er / ei;
      }
      V t = Gbr * er + Gbi * ei;  // G_b_in = conj(e) G_b_out
      Gbi = Gbi * er - Gbr * ei;
      Gbr = t;
      V* accE = acc + P;
      accE[l] += x * dphi;      // w_l
      accE[R + l] += dphi;      // b_l
      dx += (ew ? ew[l] : T(1)) * dphi;
      if (l) {
        const V* si = st + 6 * (l - 1);
        const V sar = si[0], sai = si[1], sbr = si[2], sbi = si[3];
        V* av = acc + 4 + 8 * (l - 1);
        V Gr[2] = {Gar, Gbr}, Gi[2] = {Gai, Gbi};
        for (int r = 0; r < 2; ++r) {
          av[4 * r + 0] += Gr[r] * sar + Gi[r] * sai;
          av[4 * r + 1] += Gi[r] * sar - Gr[r] * sai;
          av[4 * r + 2] += Gr[r] * sbr + Gi[r] * sbi;
          av[4 * r + 3] += Gi[r] * sbr - Gr[r] * sbi;
        }
        const T* v = p + 4 + 8 * (l - 1);  // G_in = V^dag G_out
        V nar = v[0] * Gar + v[1] * Gai + v[4] * Gbr + v[5] * Gbi;
        V nai = v[0] * Gai - v[1] * Gar + v[4] * Gbi - v[5] * Gbr;
        V nbr = v[2] * Gar + v[3] * Gai + v[6] * Gbr + v[7] * Gbi;
        V nbi = v[2] * Gai - v[3] * Gar + v[6] * Gbi - v[7] * Gbr;
        Gar = nar, Gai = nai, Gbr = nbr, Gbi = nbi;
      }
    }
    acc[0] += Gar, acc[1] += Gai, acc[2] += Gbr, acc[3] += Gbi;
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
                           typename Vec<T>::V* st, T* partial, T* gx) {
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
                          Vec<double>::V* st, double* partial, double* gx) {
  item_impl<double>(d, a, j, n0, n1, acc, st, partial, gx);
}
QKAN_CLONES void item_f32(const Dims& d, const Args<float>& a, int64_t j, int64_t n0, int64_t n1, Vec<float>::V* acc,
                          Vec<float>::V* st, float* partial, float* gx) {
  item_impl<float>(d, a, j, n0, n1, acc, st, partial, gx);
}
inline void phases(const Dims& d, const Args<double>& a, double* er, double* ei, int64_t i0, int64_t i1) { phases_f64(d, a, er, ei, i0, i1); }
inline void phases(const Dims& d, const Args<float>& a, float* er, float* ei, int64_t i0, int64_t i1) { phases_f32(d, a, er, ei, i0, i1); }
inline void item(const Dims& d, const Args<double>& a, int64_t j, int64_t n0, int64_t n1, Vec<double>::V* acc, Vec<double>::V* st,
                 double* partial, double* gx) {
  item_f64(d, a, j, n0, n1, acc, st, partial, gx);
}
inline void item(const Dims& d, const Args<float>& a, int64_t j, int64_t n0, int64_t n1, Vec<float>::V* acc, Vec<float>::V* st,
                 float* partial, float* gx) {
  item_f32(d, a, j, n0, n1, acc, st, partial, gx);
}

template <class T> void run(const Dims& d, Args<T> a) {
  using V = typename Vec<T>::V;
  constexpr int W = Vec<T>::W;
  const int64_t N = d.N, O = d.O, I = d.I, R = d.R, P = d.P(), NA = n_acc(d);
  const int64_t T_ = std::max<int64_t>(1, d.threads);
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
    V* st = acc + NA;
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

template <class T> Args<T> unpack(void* const* p) {
  Args<T> a;
  a.x = static_cast<const T*>(p[0]);
  a.table = static_cast<const T*>(p[1]);
  a.w = static_cast<const T*>(p[2]);
  a.b = static_cast<const T*>(p[3]);
  a.scale = static_cast<const T*>(p[4]);
  a.out = static_cast<T*>(p[5]);
  a.gout = static_cast<const T*>(p[6]);
  a.g_table = static_cast<T*>(p[7]);
  a.g_w = static_cast<T*>(p[8]);
  a.g_b = static_cast<T*>(p[9]);
  a.g_scale = static_cast<T*>(p[10]);
  a.g_x = static_cast<T*>(p[11]);
  a.er = a.ei = nullptr;
  return a;
}

}  // namespace

extern "C" int qkan_su2(int double_precision, const int64_t* dims, void* const* ptrs) {
  Dims d{dims[0], dims[1], dims[2], dims[3], dims[4], dims[5], dims[6], dims[7], dims[8], dims[9]};
  try {
    if (double_precision)
      run<double>(d, unpack<double>(ptrs));
    else
      run<float>(d, unpack<float>(ptrs));
  } catch (const std::bad_alloc&) {
    return 1;
  } catch (const std::system_error&) {
    return 2;
  }
  return 0;
}

extern "C" int qkan_abi_version() { return 2; }
