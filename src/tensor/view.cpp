// Names of the weight layouts (tensor/view.h).
#include "tensor/view.h"

namespace origami {

const char* LayoutName(Layout layout) {
  switch (layout) {
    case Layout::kRows: return "rows";
    case Layout::kQ4_0x8: return "Q4_0x8";
    case Layout::kQ8_0x8: return "Q8_0x8";
    case Layout::kQ4_Kx8: return "Q4_Kx8";
    case Layout::kQ6_Kx8: return "Q6_Kx8";
  }
  return "?";
}

}  // namespace origami
