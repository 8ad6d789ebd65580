// Wall-clock timing.
#pragma once

#include <chrono>

namespace origami {

inline double NowSeconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace origami
