// origami::Error: the one exception type. It carries what went wrong and where (file, tensor,
// byte offset, request field); the CLI prints it and exits 1, the server maps it to an error object.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace origami {

enum class ErrorKind {
  kInvalidInput,  // malformed file, bad flag, hostile request: the caller's fault
  kUnsupported,   // valid input we cannot handle (yet)
  kIo,            // the operating system said no
  kInternal,      // our own bug
};

class Error : public std::runtime_error {
 public:
  explicit Error(std::string what, ErrorKind kind = ErrorKind::kInvalidInput)
      : std::runtime_error(std::move(what)), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

// Throws origami::Error with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void Fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

template <typename... Args>
[[noreturn]] void FailKind(ErrorKind kind, fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...), kind);
}

}  // namespace origami
