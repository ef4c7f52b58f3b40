// SIMD helpers shared by the native kernels: GCC vector types (samples or edges as lanes),
// padded loads/stores, vectorisable sin/cos accurate to about 1 ulp, and a static thread split.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define QKAN_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define QKAN_CLONES
#endif
#define QKAN_INLINE inline __attribute__((always_inline))

namespace qkan {

constexpr int VBYTES = 32;

template <class T> struct Traits;

template <> struct Traits<double> {
  using I = int64_t;
  static constexpr int sign_shift = 62;
  static constexpr double magic = 6755399441055744.0;  // 1.5 * 2^52: x + magic rounds to an integer
  static constexpr double two_over_pi = 0.63661977236758134308;
  // pi/2 = c1 + c2 + c3; c1, c2 have 32 significant bits, so k * c1, k * c2 are exact for |k| < 2^21
  static constexpr double c1 = 0x1.921fb544p+0, c2 = 0x1.0b4611a6p-34, c3 = 0x1.3198a2e037073p-69;
  static constexpr double limit = 1e6;  // beyond: scalar libm
  static constexpr int sin_terms = 8, cos_terms = 8;  // Taylor to r^17 and r^16 on |r| <= pi/4
};

template <> struct Traits<float> {
  using I = int32_t;
  static constexpr int sign_shift = 30;
  static constexpr float magic = 12582912.0f;  // 1.5 * 2^23
  static constexpr float two_over_pi = 0.63661977236758134308f;
  static constexpr float c1 = 0x1.92p+0f, c2 = 0x1.fb4p-12f, c3 = 0x1.4442d2p-24f;  // 12-bit c1, c2
  static constexpr float limit = 4000.0f;
  static constexpr int sin_terms = 4, cos_terms = 5;  // to r^9 and r^10
};

template <class T> struct Vec {
  typedef T V __attribute__((vector_size(VBYTES)));
  typedef typename Traits<T>::I VI __attribute__((vector_size(VBYTES)));
  static constexpr int W = VBYTES / sizeof(T);
};

// Taylor coefficients (-1)^k / (2k+1)! and (-1)^k / (2k)!, highest first (Horner order)
inline constexpr double kSin[8] = {1.0 / 355687428096000.0, -1.0 / 1307674368000.0, 1.0 / 6227020800.0, -1.0 / 39916800.0,
                            1.0 / 362880.0,          -1.0 / 5040.0,          1.0 / 120.0,        -1.0 / 6.0};
inline constexpr double kCos[8] = {1.0 / 20922789888000.0, -1.0 / 87178291200.0, 1.0 / 479001600.0, -1.0 / 3628800.0,
                            1.0 / 40320.0,          -1.0 / 720.0,         1.0 / 24.0,        -0.5};

template <class T> QKAN_INLINE typename Vec<T>::V splat(T v) {
  typename Vec<T>::V r;
  for (int k = 0; k < Vec<T>::W; ++k) r[k] = v;
  return r;
}

// sin and cos of every lane: Cody-Waite reduction by pi/2, Taylor polynomials on |r| <= pi/4
// Checked: lanes beyond Traits::limit (where the reduction loses accuracy) go to libm
template <class T, bool Checked> QKAN_INLINE void vsincos(typename Vec<T>::V x, typename Vec<T>::V& s, typename Vec<T>::V& c) {
  using V = typename Vec<T>::V;
  using VI = typename Vec<T>::VI;
  using Tr = Traits<T>;
  constexpr int W = Vec<T>::W;
  V t = x * Tr::two_over_pi + Tr::magic;
  V k = t - Tr::magic;
  V r = ((x - k * Tr::c1) - k * Tr::c2) - k * Tr::c3;
  V z = r * r;
  V ps = splat<T>(T(kSin[8 - Tr::sin_terms]));
  for (int m = 9 - Tr::sin_terms; m < 8; ++m) ps = ps * z + T(kSin[m]);
  V sr = r + r * z * ps;
  V pc = splat<T>(T(kCos[8 - Tr::cos_terms]));
  for (int m = 9 - Tr::cos_terms; m < 8; ++m) pc = pc * z + T(kCos[m]);
  V cr = T(1) + z * pc;
  VI q = (VI)t;  // low mantissa bits of t hold k mod 4
  VI odd = (q & 1) != 0;
  V sv = odd ? cr : sr;
  V cv = odd ? sr : cr;
  s = (V)((VI)sv ^ ((q & 2) << Tr::sign_shift));
  c = (V)((VI)cv ^ (((q + 1) & 2) << Tr::sign_shift));
  if (!Checked) return;
  const VI ok = (x <= Tr::limit) & (x >= -Tr::limit);  // false for NaN too
  uint64_t words[VBYTES / 8];
  std::memcpy(words, &ok, sizeof(ok));
  uint64_t all = ~uint64_t(0);
  for (int m = 0; m < VBYTES / 8; ++m) all &= words[m];
  if (__builtin_expect(all != ~uint64_t(0), 0)) {
    for (int m = 0; m < W; ++m) {
      if (!(std::fabs(x[m]) <= Tr::limit)) {
        s[m] = T(std::sin(double(x[m])));
        c[m] = T(std::cos(double(x[m])));
      }
    }
  }
}

// exp of every lane: Cody-Waite reduction by ln 2, Taylor polynomial on |r| <= ln2/2 (error
// below 1 ulp), scaled by 2^k through the exponent bits; arguments clamped to the normal range.
template <class T> struct ExpTraits;
template <> struct ExpTraits<double> {
  static constexpr double lo = -708.0, hi = 709.0, ln2_hi = 0x1.62e42feep-1, ln2_lo = 0x1.a39ef35793c76p-33;
  static constexpr int terms = 13, mantissa = 52, bias = 1023;
};
template <> struct ExpTraits<float> {
  static constexpr float lo = -87.0f, hi = 88.0f, ln2_hi = 0x1.62e4p-1f, ln2_lo = 0x1.7f7d1cp-20f;
  static constexpr int terms = 7, mantissa = 23, bias = 127;
};

template <class T> QKAN_INLINE typename Vec<T>::V vexp(typename Vec<T>::V x) {
  using V = typename Vec<T>::V;
  using VI = typename Vec<T>::VI;
  using E = ExpTraits<T>;
  x = x < E::lo ? splat<T>(E::lo) : x;
  x = x > E::hi ? splat<T>(E::hi) : x;
  const V t = x * T(1.44269504088896340736) + Traits<T>::magic;
  const V k = t - Traits<T>::magic;
  const V r = (x - k * E::ln2_hi) - k * E::ln2_lo;
  V p = splat<T>(T(1));  // Horner on sum_{n <= terms} r^n / n!
  for (int n = E::terms; n >= 1; --n) p = p * r * (T(1) / T(n)) + T(1);
  const VI ki = (VI)t - (VI)splat<T>(Traits<T>::magic);
  return p * (V)((ki + E::bias) << E::mantissa);
}

template <class T> QKAN_INLINE typename Vec<T>::V vsqrt(typename Vec<T>::V v) {
  for (int m = 0; m < Vec<T>::W; ++m) v[m] = std::sqrt(v[m]);
  return v;
}

// W samples from p[n0..]; lanes past N hold `pad`
template <class T> QKAN_INLINE typename Vec<T>::V load_padded(const T* p, int64_t n0, int64_t N, T pad) {
  typename Vec<T>::V v;
  constexpr int W = Vec<T>::W;
  if (n0 + W <= N) {
    std::memcpy(&v, p + n0, sizeof(v));
  } else {
    for (int m = 0; m < W; ++m) v[m] = n0 + m < N ? p[n0 + m] : pad;
  }
  return v;
}

// padded with the last valid sample (keeps padded lanes finite)
template <class T> QKAN_INLINE typename Vec<T>::V load(const T* p, int64_t n0, int64_t N) {
  return load_padded(p, n0, N, p[N - 1]);
}

// padded with zeros (gradients: padded lanes contribute nothing)
template <class T> QKAN_INLINE typename Vec<T>::V load_zero(const T* p, int64_t n0, int64_t N) {
  return load_padded(p, n0, N, T(0));
}

template <class T> QKAN_INLINE void store(T* p, int64_t n0, int64_t N, typename Vec<T>::V v) {
  constexpr int W = Vec<T>::W;
  if (n0 + W <= N) {
    std::memcpy(p + n0, &v, sizeof(v));
  } else {
    for (int m = 0; n0 + m < N; ++m) p[n0 + m] = v[m];
  }
}

// W lanes from p[(n0 + m) * stride] (padded with the last valid one)
template <class T> QKAN_INLINE typename Vec<T>::V gather(const T* p, int64_t n0, int64_t N, int64_t stride) {
  typename Vec<T>::V v;
  for (int m = 0; m < Vec<T>::W; ++m) v[m] = p[std::min<int64_t>(n0 + m, N - 1) * stride];
  return v;
}

template <class T> QKAN_INLINE void scatter(T* p, int64_t n0, int64_t N, int64_t stride, typename Vec<T>::V v) {
  for (int m = 0; m < Vec<T>::W && n0 + m < N; ++m) p[(n0 + m) * stride] = v[m];
}

// Threads worth starting for `count` units of work when each thread should get at least `grain`
// (starting a thread costs tens of microseconds); results never depend on it beyond rounding.
inline int64_t useful_threads(int64_t threads, int64_t count, int64_t grain) {
  return std::max<int64_t>(1, std::min(threads, count / std::max<int64_t>(1, grain)));
}

// Run body(t, begin, end) over [0, count) split into `threads` contiguous ranges.
template <class F> void parallel(int64_t threads, int64_t count, F body) {
  threads = std::max<int64_t>(1, std::min(threads, count));
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < threads; ++t) pool.emplace_back(body, t, count * t / threads, count * (t + 1) / threads);
  body(0, 0, count / threads);
  for (auto& th : pool) th.join();
}

}  // namespace qkan
