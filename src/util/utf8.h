// UTF-8 validation and display helpers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace origami {

// True when s is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool IsValidUtf8(std::string_view s);
// Length in bytes of the UTF-8 sequence that starts with lead byte c (1 for invalid leads).
int Utf8SeqLen(unsigned char c);
// Appends the UTF-8 encoding of code point cp (<= U+10FFFF; callers pass valid code points).
void AppendUtf8(std::string& out, uint32_t cp);
// s with control characters and invalid bytes escaped, cut to max_len bytes (for messages).
std::string EscapeForDisplay(std::string_view s, size_t max_len);

}  // namespace origami
