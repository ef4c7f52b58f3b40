// The C ABI of the native kernels, called through ctypes: every entry point takes
// (int double_precision, const <Args>* args) and returns 0, or 1 (out of memory), 2 (threads
// could not start), 3 (a gate list longer than kMaxGates). Sizes and flags are int64_t; data
// pointers are float* or double* by double_precision, null where unused.
//
// abi.py mirrors every struct here as a ctypes Structure of the same name with the same fields
// in the same order. At load the library's QKAN_ABI_VERSION and the size of every struct
// (qkan_args_size) must equal abi.py's, else the torch path runs; change both files together
// and bump the version with any change.
#pragma once

#include <stdint.h>

#define QKAN_ABI_VERSION 5

namespace qkan {

// qkan_su2 (su2_kernel.cpp): edge values or their weighted sum from the prepared table, or the
// backward. Inputs are contiguous and transposed so that samples are the innermost dimension.
struct SU2Args {
  int64_t N, O, I, R;
  int64_t measure;  // 0 z, 1 amplitude
  int64_t enc;      // 0 phi = x, 1 per input w, b (I, R), 2 per edge w, b (O, I, R)
  int64_t arccos;   // 1: the arccos encoding
  int64_t mode;     // 0: out = y (O, N) = sum_i scale f, 1: out = the edges (O, I, N)
  int64_t threads;
  int64_t backward;
  const void* x;      // (I, N)
  const void* table;  // (O, I, P), P = table_width(R, measure) (circuit.h)
  const void* w;
  const void* b;
  const void* scale;  // (O, I)
  void* out;
  const void* g_out;  // like out
  void* g_table;      // (O, I, P)
  void* g_w;          // (O, I, R)
  void* g_b;          // (O, I, R)
  void* g_scale;      // (O, I)
  void* g_x;          // (I, N)
};

// qkan_prepare (prepare_kernel.cpp): theta -> the prepared table, or the backward.
struct PrepareArgs {
  int64_t E;  // edges
  int64_t R;
  int64_t n_slots;
  int64_t k;
  int64_t measure;  // 0 z, 1 amplitude
  int64_t backward;
  int64_t threads;
  const int64_t* program;  // the ansatz (Program in circuit.h)
  const void* theta;       // (E, n_slots, k)
  void* table;             // (P, E) (forward output)
  const void* g_table;     // (P, E)
  void* g_theta;           // (E, n_slots, k)
};

// qkan_fourier_compile (fourier_kernel.cpp): theta -> Fourier coefficients, or the backward.
struct FourierCompileArgs {
  int64_t E;
  int64_t R;
  int64_t n_slots;
  int64_t k;
  int64_t backward;
  int64_t threads;
  const int64_t* program;  // the ansatz (Program in circuit.h)
  const void* theta;       // (E, n_slots, k)
  void* coeffs;            // (1 + 2R, E) = [a0; a_1..a_R; b_1..b_R]
  const void* g_coeffs;    // like coeffs
  void* g_theta;           // like theta
  void* saved;             // the forward's state for the backward (32-byte aligned), or null
};

// qkan_fourier_features (fourier_kernel.cpp): x -> cos(k x), sin(k x) (and silu(x)), or the backward.
struct FourierFeaturesArgs {
  int64_t N, I, K;
  int64_t slots;  // of phi: >= 2K (+1 with base)
  int64_t base;   // 1: slot 2K holds silu(x)
  int64_t backward;
  int64_t threads;
  const void* x;      // (N, I)
  void* phi;          // (N, slots, I)
  const void* g_phi;  // like phi
  void* g_x;          // like x
  void* sig;          // (N, I): the sigmoid of x (base 1 only), written forward, read backward
};

// qkan_fourier_weights (fourier_kernel.cpp): coefficients and edge weights -> the layer's matrix, or the backward.
struct FourierWeightsArgs {
  int64_t O, I;
  int64_t Og, Ig;  // O', I' of the coefficients: O or 1, I or 1
  int64_t K;
  int64_t S;  // slots per input of W: 2K (+1 with a base term)
  int64_t backward;
  const void* coeffs;   // (1 + 2K, O', I')
  const void* scale;    // (O, I)
  const void* cnst;     // (O,)
  const void* base_w;   // (O, I) or null
  void* W;              // (O, S, I)
  void* bias;           // (O,)
  const void* g_W;      // like W
  const void* g_const;  // (O,)
  void* g_coeffs;       // like coeffs
  void* g_scale;        // (O, I)
  void* g_base_w;       // (O, I) or null
};

}  // namespace qkan

extern "C" {
int qkan_abi_version();
int64_t qkan_args_size(const char* entry_point);  // sizeof the entry point's struct, -1 for an unknown name
int64_t qkan_table_width(int64_t R, int64_t measure);
int qkan_su2(int double_precision, const qkan::SU2Args* args);
int qkan_prepare(int double_precision, const qkan::PrepareArgs* args);
int qkan_fourier_compile(int double_precision, const qkan::FourierCompileArgs* args);
int qkan_fourier_features(int double_precision, const qkan::FourierFeaturesArgs* args);
int qkan_fourier_weights(int double_precision, const qkan::FourierWeightsArgs* args);
}
