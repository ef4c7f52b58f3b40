// The entry points that describe the ABI itself (abi.h): its version, the size of every argument
// struct (compared with abi.py's at load) and the prepared table's width.

#include <cstring>

#include "circuit.h"

extern "C" int qkan_abi_version() { return QKAN_ABI_VERSION; }

extern "C" int64_t qkan_args_size(const char* entry_point) {
  const struct {
    const char* name;
    size_t size;
  } sizes[] = {{"qkan_su2", sizeof(qkan::SU2Args)},
               {"qkan_prepare", sizeof(qkan::PrepareArgs)},
               {"qkan_fourier_compile", sizeof(qkan::FourierCompileArgs)},
               {"qkan_fourier_features", sizeof(qkan::FourierFeaturesArgs)},
               {"qkan_fourier_weights", sizeof(qkan::FourierWeightsArgs)}};
  for (const auto& s : sizes)
    if (std::strcmp(s.name, entry_point) == 0) return static_cast<int64_t>(s.size);
  return -1;
}

extern "C" int64_t qkan_table_width(int64_t R, int64_t measure) { return qkan::table_width(R, measure); }
