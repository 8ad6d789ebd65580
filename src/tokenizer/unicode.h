// Unicode data the normalizers need (NFD/NFC, full lowercase, a few general categories), from
// tables generated out of Python's unicodedata by tools/tokenizer_reference/gen_unicode_tables.py.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace origami::tok {

std::vector<uint32_t> ToCodepoints(std::string_view utf8);  // ill-formed bytes become U+FFFD
std::string FromCodepoints(const std::vector<uint32_t>& cps);

std::vector<uint32_t> Nfd(const std::vector<uint32_t>& cps);
std::vector<uint32_t> Nfc(const std::vector<uint32_t>& cps);
std::string NfcUtf8(std::string_view s);
// Appends the full lowercase mapping of cp (one or more code points).
void AppendLower(uint32_t cp, std::vector<uint32_t>& out);

bool IsMark(uint32_t cp);         // Mn
bool IsPunctuation(uint32_t cp);  // P*
bool IsOther(uint32_t cp);        // any C* category (Cc, Cf, Co, Cn, Cs)
bool IsWhiteSpace(uint32_t cp);   // Unicode White_Space
uint8_t CombiningClass(uint32_t cp);

}  // namespace origami::tok
