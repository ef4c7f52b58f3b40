// Batch-independent part of the SU(2) evaluation (qkan/simulators/gates.py encoding_frame and
// su2.py prepare), forward and backward, with edges as SIMD lanes: theta -> the real table the
// per-sample kernel reads (see su2_kernel.cpp for its layout).
//
// Per edge: U_l = the rep's gates with theta[l] (first acts first), F = the final gates with
// theta[R] (identity when the ansatz has none), W the eigenframe of the data rotation (I for RZ,
// H for RX, S H for RY). Table: psi = W^dag U_0 H|0>; V_l = W^dag U_l W (l = 1..R-1); readout
// (m00, m01) of M = (F W)^dag Z (F W) for measure "z", the entries of F W for "amplitude".
// Backward: adjoints of those products back to every gate angle.
//
// C ABI: qkan_prepare(double_precision, const PrepareArgs*) (abi.h).

#include "circuit.h"

namespace {

using namespace qkan;

template <class T> struct Alg {
  using V = typename Vec<T>::V;
  static constexpr int W = Vec<T>::W;
  struct C {
    V r, i;
  };
  struct M {
    C m[2][2];
  };

  static QKAN_INLINE C cz() { return {splat<T>(0), splat<T>(0)}; }
  static QKAN_INLINE C cr(T r) { return {splat<T>(r), splat<T>(0)}; }
  static QKAN_INLINE C add(C a, C b) { return {a.r + b.r, a.i + b.i}; }
  static QKAN_INLINE C mul(C a, C b) { return {a.r * b.r - a.i * b.i, a.r * b.i + a.i * b.r}; }
  static QKAN_INLINE C conj(C a) { return {a.r, -a.i}; }
  static QKAN_INLINE C scl(C a, T s) { return {a.r * s, a.i * s}; }
  static QKAN_INLINE M matmul(const M& a, const M& b) {
    M o;
    for (int r = 0; r < 2; ++r)
      for (int c = 0; c < 2; ++c) o.m[r][c] = add(mul(a.m[r][0], b.m[0][c]), mul(a.m[r][1], b.m[1][c]));
    return o;
  }
  static QKAN_INLINE M dagger(const M& a) {
    M o;
    for (int r = 0; r < 2; ++r)
      for (int c = 0; c < 2; ++c) o.m[r][c] = conj(a.m[c][r]);
    return o;
  }
  static QKAN_INLINE M eye() { return {{{cr(1), cz()}, {cz(), cr(1)}}}; }
  // Re <G, A> = sum Re(conj(G) A): the derivative of the loss along A when G is the gradient
  static QKAN_INLINE V dot(const M& g, const M& a) {
    V s = splat<T>(0);
    for (int r = 0; r < 2; ++r)
      for (int c = 0; c < 2; ++c) s += g.m[r][c].r * a.m[r][c].r + g.m[r][c].i * a.m[r][c].i;
    return s;
  }

  // The gate `code` given c = cos(a/2), s = sin(a/2) of its angle (fixed gates ignore them).
  // Entries are linear in (c, s), so (c, s) -> (-s/2, c/2) gives the derivative in the angle.
  static QKAN_INLINE M gate(int64_t code, V c, V s) {
    const T h = T(0.70710678118654752440);
    if (code == 3) return {{{cr(h), cr(h)}, {cr(h), cr(-h)}}};
    if (code == 4) return {{{cz(), cr(1)}, {cr(1), cz()}}};
    if (code == 5) return {{{cr(1), cz()}, {cz(), cr(-1)}}};
    const V z = splat<T>(0);
    if (code == 0) return {{{{c, z}, {z, -s}}, {{z, -s}, {c, z}}}};  // RX
    if (code == 1) return {{{{c, z}, {-s, z}}, {{s, z}, {c, z}}}};   // RY
    return {{{{c, -s}, {z, z}}, {{z, z}, {c, s}}}};                  // RZ
  }
};


template <class T> struct Job {
  int64_t E, R, n_slots, k, measure, backward;
  bool bounded;  // every |theta| / 2 within the fast sin/cos range
  Program prog;
  const T* theta;
  T* table;
  const T* g_table;
  T* g_theta;
};

// Frame change W for the data rotation (W^dag P W = Z).
template <class T> QKAN_INLINE typename Alg<T>::M frame(int64_t encoding) {
  using A = Alg<T>;
  const T h = T(0.70710678118654752440);
  if (encoding == 2) return A::eye();
  if (encoding == 0) return {{{A::cr(h), A::cr(h)}, {A::cr(h), A::cr(-h)}}};  // H
  typename A::C ih = {splat<T>(0), splat<T>(h)};
  return {{{A::cr(h), A::cr(h)}, {ih, {splat<T>(0), splat<T>(-h)}}}};  // S H
}

// The gates of one slot (first acts first) and, where dg is given, their derivatives in their angles.
// Checked: some angle may lie beyond the fast sin/cos range (Job::bounded is false).
template <class T, bool Checked>
QKAN_INLINE void slot_gates(const Job<T>& J, const int64_t* gates, int64_t n, int64_t slot, int64_t e0, typename Alg<T>::M* g,
                            typename Alg<T>::M* dg) {
  using V = typename Alg<T>::V;
  for (int64_t j = 0; j < n; ++j) {
    const int64_t param = gates[2 * j + 1];
    V s = splat<T>(0), c = splat<T>(1);
    if (param >= 0) vsincos<T, Checked>(gather(J.theta + slot * J.k + param, e0, J.E, J.n_slots * J.k) * T(0.5), s, c);
    g[j] = Alg<T>::gate(gates[2 * j], c, s);
    if (dg && param >= 0) dg[j] = Alg<T>::gate(gates[2 * j], s * T(-0.5), c * T(0.5));
  }
}

// g[n-1] ... g[0], with g[swap] replaced by `replacement` when swap >= 0.
template <class T>
QKAN_INLINE typename Alg<T>::M chain(const typename Alg<T>::M* g, int64_t n, int64_t swap = -1, const typename Alg<T>::M* replacement = nullptr) {
  if (n == 0) return Alg<T>::eye();
  typename Alg<T>::M U = swap == 0 ? *replacement : g[0];
  for (int64_t j = 1; j < n; ++j) U = Alg<T>::matmul(j == swap ? *replacement : g[j], U);
  return U;
}

// The product of one slot's gates.
template <class T, bool Checked> QKAN_INLINE typename Alg<T>::M product(const Job<T>& J, const int64_t* gates, int64_t n, int64_t slot, int64_t e0) {
  typename Alg<T>::M g[kMaxGates];
  slot_gates<T, Checked>(J, gates, n, slot, e0, g, static_cast<typename Alg<T>::M*>(nullptr));
  return chain<T>(g, n);
}

// Accumulate dL/dtheta of one slot's gates given the gradient G of their product.
template <class T, bool Checked>
QKAN_INLINE void slot_backward(const Job<T>& J, const int64_t* gates, int64_t n, int64_t slot, int64_t e0, const typename Alg<T>::M& G,
                               typename Alg<T>::V* gtheta) {
  typename Alg<T>::M g[kMaxGates], dg[kMaxGates];
  slot_gates<T, Checked>(J, gates, n, slot, e0, g, dg);
  for (int64_t j = 0; j < n; ++j) {
    const int64_t param = gates[2 * j + 1];
    if (param >= 0) gtheta[slot * J.k + param] += Alg<T>::dot(G, chain<T>(g, n, j, dg + j));
  }
}

template <class T> QKAN_INLINE void store_c(const Job<T>& J, int64_t row, int64_t e0, const typename Alg<T>::C& z) {
  store(J.table + row * J.E, e0, J.E, z.r);
  store(J.table + (row + 1) * J.E, e0, J.E, z.i);
}

template <class T> QKAN_INLINE typename Alg<T>::C load_c(const Job<T>& J, int64_t row, int64_t e0) {
  return {load_zero(J.g_table + row * J.E, e0, J.E), load_zero(J.g_table + (row + 1) * J.E, e0, J.E)};
}

// gtheta: scratch of n_slots * k vectors (backward)
template <class T, bool Checked> QKAN_INLINE void prepare_impl(const Job<T>& J, int64_t e0, typename Vec<T>::V* gtheta) {
  using A = Alg<T>;
  using Mx = typename A::M;
  const int64_t R = J.R, mrow = readout_row(R);
  const Program& p = J.prog;
  const Mx Wf = frame<T>(p.encoding), Wd = A::dagger(Wf);
  const bool rz = p.encoding == 2;  // W = I: skip the frame products
  auto left = [&](const Mx& X) { return rz ? X : A::matmul(Wd, X); };   // W^dag X
  auto right = [&](const Mx& X) { return rz ? X : A::matmul(X, Wf); };  // X W
  const T h = T(0.70710678118654752440);
  const Mx F = p.n_fin ? product<T, Checked>(J, p.fin, p.n_fin, R, e0) : A::eye();
  const Mx Fw = right(F);
  if (!J.backward) {
    const Mx U0 = left(product<T, Checked>(J, p.rep, p.n_rep, 0, e0));
    store_c(J, 0, e0, A::scl(A::add(U0.m[0][0], U0.m[0][1]), h));
    store_c(J, 2, e0, A::scl(A::add(U0.m[1][0], U0.m[1][1]), h));
    for (int64_t l = 1; l < R; ++l) {
      const Mx Vl = right(left(product<T, Checked>(J, p.rep, p.n_rep, l, e0)));
      for (int r = 0; r < 4; ++r) store_c(J, gate_row(l) + 2 * r, e0, Vl.m[r / 2][r % 2]);
    }
    if (J.measure == 0) {
      const typename A::C a = Fw.m[0][0], b = Fw.m[1][0], c = Fw.m[0][1], d = Fw.m[1][1];
      store(J.table + mrow * J.E, e0, J.E, a.r * a.r + a.i * a.i - b.r * b.r - b.i * b.i);
      store_c(J, mrow + 1, e0, A::add(A::mul(A::conj(a), c), A::scl(A::mul(A::conj(b), d), T(-1))));
    } else {
      for (int r = 0; r < 4; ++r) store_c(J, mrow + 2 * r, e0, Fw.m[r / 2][r % 2]);
    }
    return;
  }
  for (int64_t m = 0; m < J.n_slots * J.k; ++m) gtheta[m] = splat<T>(0);
  // psi = W^dag U_0 h, h = (1, 1)/sqrt 2: G_U0 = (W G_psi) h^T
  const Mx Gpsi = {{{load_c(J, 0, e0), A::cz()}, {load_c(J, 2, e0), A::cz()}}};
  const Mx WG = rz ? Gpsi : A::matmul(Wf, Gpsi);
  const Mx GU0 = {{{A::scl(WG.m[0][0], h), A::scl(WG.m[0][0], h)}, {A::scl(WG.m[1][0], h), A::scl(WG.m[1][0], h)}}};
  slot_backward<T, Checked>(J, p.rep, p.n_rep, 0, e0, GU0, gtheta);
  for (int64_t l = 1; l < R; ++l) {  // V_l = W^dag U_l W: G_U = W G_V W^dag
    Mx GV;
    for (int r = 0; r < 4; ++r) GV.m[r / 2][r % 2] = load_c(J, gate_row(l) + 2 * r, e0);
    slot_backward<T, Checked>(J, p.rep, p.n_rep, l, e0, rz ? GV : A::matmul(A::matmul(Wf, GV), Wd), gtheta);
  }
  if (p.n_fin) {
    Mx GFw;
    if (J.measure == 0) {  // M = Fw^dag Z Fw, G_M = [[g00, G01], [0, 0]]: G_Fw = Z Fw (G_M + G_M^dag)
      const typename A::C g00 = {load_zero(J.g_table + mrow * J.E, e0, J.E) * T(2), splat<T>(0)}, g01 = load_c(J, mrow + 1, e0);
      const Mx S = {{{g00, g01}, {A::conj(g01), A::cz()}}};
      Mx ZF = Fw;
      ZF.m[1][0] = A::scl(ZF.m[1][0], T(-1));
      ZF.m[1][1] = A::scl(ZF.m[1][1], T(-1));
      GFw = A::matmul(ZF, S);
    } else {
      for (int r = 0; r < 4; ++r) GFw.m[r / 2][r % 2] = load_c(J, mrow + 2 * r, e0);
    }
    slot_backward<T, Checked>(J, p.fin, p.n_fin, R, e0, rz ? GFw : A::matmul(GFw, Wd), gtheta);
  }
  for (int64_t m = 0; m < J.n_slots * J.k; ++m) scatter(J.g_theta + m, e0, J.E, J.n_slots * J.k, gtheta[m]);
}

QKAN_CLONES void prepare_f64(const Job<double>& J, int64_t e0, int64_t e1, Vec<double>::V* g) {
  for (int64_t e = e0; e < e1; e += Vec<double>::W) J.bounded ? prepare_impl<double, false>(J, e, g) : prepare_impl<double, true>(J, e, g);
}
QKAN_CLONES void prepare_f32(const Job<float>& J, int64_t e0, int64_t e1, Vec<float>::V* g) {
  for (int64_t e = e0; e < e1; e += Vec<float>::W) J.bounded ? prepare_impl<float, false>(J, e, g) : prepare_impl<float, true>(J, e, g);
}
inline void prepare_range(const Job<double>& J, int64_t e0, int64_t e1, Vec<double>::V* g) { prepare_f64(J, e0, e1, g); }
inline void prepare_range(const Job<float>& J, int64_t e0, int64_t e1, Vec<float>::V* g) { prepare_f32(J, e0, e1, g); }

template <class T> int run(const PrepareArgs& a) {
  Job<T> J;
  J.E = a.E, J.R = a.R, J.n_slots = a.n_slots, J.k = a.k, J.measure = a.measure, J.backward = a.backward;
  J.prog = Program::parse(a.program);
  if (J.prog.n_rep > kMaxGates || J.prog.n_fin > kMaxGates) return 3;
  J.theta = static_cast<const T*>(a.theta);
  J.table = static_cast<T*>(a.table);
  J.g_table = static_cast<const T*>(a.g_table);
  J.g_theta = static_cast<T*>(a.g_theta);
  J.bounded = true;
  for (int64_t m = 0; m < J.E * J.n_slots * J.k; ++m) J.bounded &= std::fabs(J.theta[m]) <= T(1.9) * Traits<T>::limit;
  constexpr int W = Vec<T>::W;
  const int64_t chunks = (J.E + W - 1) / W;
  parallel(useful_threads(a.threads, chunks, 32), chunks, [&](int64_t, int64_t c0, int64_t c1) {
    using V = typename Vec<T>::V;
    std::vector<char> raw((J.n_slots * J.k + 1) * sizeof(V));  // aligned by hand, as in su2_kernel.cpp
    V* g = reinterpret_cast<V*>((reinterpret_cast<uintptr_t>(raw.data()) + sizeof(V) - 1) / sizeof(V) * sizeof(V));
    prepare_range(J, c0 * W, std::min(J.E, c1 * W), g);
  });
  return 0;
}

}  // namespace

extern "C" int qkan_prepare(int double_precision, const PrepareArgs* args) {
  try {
    return double_precision ? run<double>(*args) : run<float>(*args);
  } catch (const std::bad_alloc&) {
    return 1;
  } catch (const std::system_error&) {
    return 2;
  }
}
