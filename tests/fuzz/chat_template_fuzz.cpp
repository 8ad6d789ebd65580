// Fuzz target: arbitrary template sources (and renders of them) must end in output or a clear
// origami::Error, never a crash, a hang or unbounded memory.
#include <cstddef>
#include <cstdint>

namespace origami {
int FuzzChatTemplate(const uint8_t* data, size_t size);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return origami::FuzzChatTemplate(data, size);
}
