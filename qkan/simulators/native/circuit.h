// The per-sample part of a prepared DARUAN circuit, forward and adjoint, on SIMD lanes.
//
// A prepared circuit (see prepare_kernel.cpp) is a table of real entries: psi = (a, b); per data
// rotation l = 1..R-1 a 2x2 gate (g00, g01, g10, g11 as re, im pairs); the readout (m00, m01 of
// the observable for measure "z", the final gates' entries for "amplitude"). Table entries have
// type S: a scalar broadcast over the lanes (su2_kernel.cpp: lanes are samples) or a vector
// (fourier_kernel.cpp: lanes are edges). Gradients use the convention G = dL/dRe + i dL/dIm.
#pragma once

#include "abi.h"
#include "simd.h"

namespace qkan {

// Rows of the prepared table of one edge: psi at 0, V_l at gate_row(l), the readout at
// readout_row(R); table_width reals in all (exported as qkan_table_width, which ops.py allocates by).
constexpr int64_t gate_row(int64_t l) { return 4 + 8 * (l - 1); }
constexpr int64_t readout_row(int64_t R) { return gate_row(R); }
constexpr int64_t table_width(int64_t R, int64_t measure) { return readout_row(R) + (measure == 0 ? 3 : 8); }

// most gates per slot (scratch sizes); longer programs are refused (return code 3)
constexpr int64_t kMaxGates = 8;

// An ansatz as gate codes (qkan/simulators/native/ops.py `program`): n_rep, (code, param) * n_rep,
// n_fin, (code, param) * n_fin, encoding code; codes 0 RX, 1 RY, 2 RZ, 3 H, 4 X, 5 Z; param -1
// for fixed gates, else the index of its angle within the slot.
struct Program {
  const int64_t* rep;  // (code, param) pairs
  int64_t n_rep;
  const int64_t* fin;
  int64_t n_fin;
  int64_t encoding;
  static Program parse(const int64_t* p) {
    Program g;
    g.n_rep = p[0], g.rep = p + 1;
    g.n_fin = p[1 + 2 * g.n_rep], g.fin = p + 2 + 2 * g.n_rep;
    g.encoding = p[2 + 2 * g.n_rep + 2 * g.n_fin];
    return g;
  }
};

template <class V> struct Qubit {
  V ar, ai, br, bi;
};

// s <- g s for a 2x2 gate g (8 reals)
template <class V, class S> QKAN_INLINE Qubit<V> apply(const S* g, const Qubit<V>& s) {
  return {g[0] * s.ar - g[1] * s.ai + g[2] * s.br - g[3] * s.bi, g[0] * s.ai + g[1] * s.ar + g[2] * s.bi + g[3] * s.br,
          g[4] * s.ar - g[5] * s.ai + g[6] * s.br - g[7] * s.bi, g[4] * s.ai + g[5] * s.ar + g[6] * s.bi + g[7] * s.br};
}

// G <- g^dag G: the gradient before a gate from the gradient after it
template <class V, class S> QKAN_INLINE Qubit<V> apply_dagger(const S* g, const Qubit<V>& G) {
  return {g[0] * G.ar + g[1] * G.ai + g[4] * G.br + g[5] * G.bi, g[0] * G.ai - g[1] * G.ar + g[4] * G.bi - g[5] * G.br,
          g[2] * G.ar + g[3] * G.ai + g[6] * G.br + g[7] * G.bi, g[2] * G.ai - g[3] * G.ar + g[6] * G.bi - g[7] * G.br};
}

// acc (8) += G s^dag: the gradient of a gate's entries, given the state before it
template <class V> QKAN_INLINE void outer_acc(V* acc, const Qubit<V>& G, const Qubit<V>& s) {
  const V Gr[2] = {G.ar, G.br}, Gi[2] = {G.ai, G.bi};
  for (int r = 0; r < 2; ++r) {
    acc[4 * r + 0] += Gr[r] * s.ar + Gi[r] * s.ai;
    acc[4 * r + 1] += Gi[r] * s.ar - Gr[r] * s.ai;
    acc[4 * r + 2] += Gr[r] * s.br + Gi[r] * s.bi;
    acc[4 * r + 3] += Gi[r] * s.br - Gr[r] * s.bi;
  }
}

// b <- b e: the data rotation diag(1, e) in its eigenframe
template <class V> QKAN_INLINE void rotate(Qubit<V>& s, V er, V ei) {
  const V t = s.br * er - s.bi * ei;
  s.bi = s.br * ei + s.bi * er;
  s.br = t;
}

// Adjoint of rotate: G (after) -> G (before); returns dL/dphi (e = e^{i phi}) or, with arccos,
// dL/dp (e = p + i sqrt(1 - p^2)). s_out: the state after the rotation.
template <class V> QKAN_INLINE V rotate_backward(Qubit<V>& G, const Qubit<V>& s_out, V er, V ei, bool arccos) {
  V d;
  if (!arccos) {
    d = G.bi * s_out.br - G.br * s_out.bi;
  } else {  // G_e = conj(b_in) G_b with b_in = b_out conj(e); dL/dp = Re G_e - Im G_e p / sqrt(1 - p^2)
    // At |p| = 1 (ei = 0) the derivative of sqrt(1 - p^2) is taken as 0, as in su2_torch.sin_arccos.
    const V bir = s_out.br * er + s_out.bi * ei, bii = s_out.bi * er - s_out.br * ei;
    const V zero = ei - ei, ratio = ei > zero ? er / ei : zero;
    d = (bir * G.br + bii * G.bi) - (bir * G.bi - bii * G.br) * ratio;
  }
  const V t = G.br * er + G.bi * ei;  // conj(e) G_b
  G.bi = G.bi * er - G.br * ei;
  G.br = t;
  return d;
}

// Readout of the state: "z" (amp false) psi^dag M psi with M = [[m00, m01], [conj m01, -m00]];
// "amplitude" |a'| - |b'| with (a', b') = F psi.
template <class T, class V, class S> QKAN_INLINE V readout(const S* m, bool amp, const Qubit<V>& s) {
  if (!amp) {
    const V cr = m[1] * s.br - m[2] * s.bi, ci = m[1] * s.bi + m[2] * s.br;  // m01 b
    return m[0] * (s.ar * s.ar + s.ai * s.ai - s.br * s.br - s.bi * s.bi) + T(2) * (s.ar * cr + s.ai * ci);
  }
  const Qubit<V> u = apply(m, s);
  return vsqrt<T>(u.ar * u.ar + u.ai * u.ai) - vsqrt<T>(u.br * u.br + u.bi * u.bi);
}

// Adjoint of readout for dL/df = g: returns the gradient of the state; accM += that of the readout entries.
template <class T, class V, class S> QKAN_INLINE Qubit<V> readout_backward(const S* m, bool amp, const Qubit<V>& s, V g, V* accM) {
  if (!amp) {  // G = 2 g M psi; dm00 = g (|a|^2 - |b|^2); dm01 = 2 g a conj(b)
    const V g2 = g + g;
    accM[0] += g * (s.ar * s.ar + s.ai * s.ai - s.br * s.br - s.bi * s.bi);
    accM[1] += g2 * (s.ar * s.br + s.ai * s.bi);
    accM[2] += g2 * (s.ai * s.br - s.ar * s.bi);
    return {g2 * (m[0] * s.ar + m[1] * s.br - m[2] * s.bi), g2 * (m[0] * s.ai + m[1] * s.bi + m[2] * s.br),
            g2 * (m[1] * s.ar + m[2] * s.ai - m[0] * s.br), g2 * (m[1] * s.ai - m[2] * s.ar - m[0] * s.bi)};
  }
  // G_a' = g a'/|a'|, G_b' = -g b'/|b'| (0 where the norm is 0); then through a' = F psi
  const Qubit<V> u = apply(m, s);
  const V na = vsqrt<T>(u.ar * u.ar + u.ai * u.ai), nb = vsqrt<T>(u.br * u.br + u.bi * u.bi);
  const V za = na > 0 ? g / na : splat<T>(0), zb = nb > 0 ? -g / nb : splat<T>(0);
  const Qubit<V> Gu = {za * u.ar, za * u.ai, zb * u.br, zb * u.bi};
  outer_acc(accM, Gu, s);
  return apply_dagger(m, Gu);
}

}  // namespace qkan
