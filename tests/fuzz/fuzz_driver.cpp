// A standalone driver for libFuzzer-style targets, for builds without clang's -fsanitize=fuzzer
// (GCC + ASan/UBSan in CI): runs LLVMFuzzerTestOneInput over a seed corpus, then over random
// mutations of it (bit flips, byte and integer-field smashing, truncation, splices, chunk
// insertion and deletion) for a bounded time. No coverage feedback: it is a bounded smoke fuzzer,
// the libFuzzer build is the deep one. On a crash the input is written to <prefix>crash-input.
//
//   fuzz_driver [--seconds N] [--iterations N] [--seed S] [--max-len BYTES] [--artifact-prefix P]
//               CORPUS_DIR_OR_FILE...
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
// From the sanitizer runtime when one is linked (ASan, UBSan); null otherwise.
extern "C" void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

namespace {

namespace fs = std::filesystem;
using Input = std::vector<uint8_t>;

// What is running now, for the crash handlers (async-signal-safe: fixed buffers, write(2)).
const uint8_t* g_current = nullptr;
size_t g_current_size = 0;
char g_crash_path[4096] = "crash-input";

void DumpCurrentInput() {
  static volatile sig_atomic_t dumped = 0;
  if (dumped) return;
  dumped = 1;
  const int fd = ::open(g_crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    size_t done = 0;
    while (done < g_current_size) {
      const ssize_t n = ::write(fd, g_current + done, g_current_size - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    ::close(fd);
  }
  const char msg[] = "\nfuzz_driver: the failing input was written to ";
  (void)!::write(2, msg, sizeof(msg) - 1);
  (void)!::write(2, g_crash_path, std::strlen(g_crash_path));
  (void)!::write(2, "\n", 1);
}

void OnSignal(int sig) {
  DumpCurrentInput();
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void InstallCrashHandlers() {
  for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL}) ::signal(sig, OnSignal);
  // ASan and UBSan report and then exit without a signal: they call this on the way out.
  if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(DumpCurrentInput);
}

void Run(const Input& in) {
  // A heap copy of exactly the input's size, so ASan flags any read past the end.
  std::unique_ptr<uint8_t[]> buf(new uint8_t[in.empty() ? 1 : in.size()]);
  if (!in.empty()) std::memcpy(buf.get(), in.data(), in.size());
  g_current = in.data();
  g_current_size = in.size();
  LLVMFuzzerTestOneInput(buf.get(), in.size());
}

void LoadCorpus(const fs::path& p, std::vector<Input>& out) {
  std::error_code ec;
  if (fs::is_directory(p, ec)) {
    std::vector<fs::path> files;
    for (const auto& e : fs::recursive_directory_iterator(p, ec))
      if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());  // a fixed order keeps runs reproducible
    for (const auto& f : files) LoadCorpus(f, out);
    return;
  }
  std::ifstream in(p, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "fuzz_driver: cannot read %s (skipped)\n", p.string().c_str());
    return;
  }
  out.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Values that break size and offset arithmetic when written over an integer field.
constexpr uint64_t kInteresting[] = {0,
                                     1,
                                     2,
                                     3,
                                     4,
                                     5,
                                     7,
                                     8,
                                     12,
                                     13,
                                     31,
                                     32,
                                     64,
                                     127,
                                     128,
                                     255,
                                     256,
                                     0x7fff,
                                     0xffff,
                                     0x10000,
                                     0x7fffffff,
                                     0x80000000,
                                     0xffffffff,
                                     uint64_t{1} << 32,
                                     uint64_t{1} << 40,
                                     uint64_t{1} << 60,
                                     uint64_t{1} << 61,
                                     uint64_t{1} << 62,
                                     uint64_t{1} << 63,
                                     ~uint64_t{0} >> 1,
                                     ~uint64_t{0} - 1,
                                     ~uint64_t{0}};

class Mutator {
 public:
  Mutator(uint64_t seed, size_t max_len) : rng_(seed), max_len_(max_len) {}

  // Applies 1 to 6 random mutations; `other` is a second corpus entry for splices.
  void Mutate(Input& in, const Input& other) {
    const int n = 1 + static_cast<int>(Below(6));
    for (int i = 0; i < n; ++i) MutateOnce(in, other);
    if (in.size() > max_len_) in.resize(max_len_);
  }

 private:
  uint64_t Below(uint64_t n) { return n ? std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_) : 0; }

  // A position to mutate: anywhere, or (half the time) where a small little-endian u64 sits,
  // which in GGUF is almost always a count, a length, a dimension or an offset.
  size_t Pick(const Input& in, size_t width) {
    if (in.size() < width) return 0;
    const size_t span = in.size() - width + 1;
    if (Below(2) == 0 && in.size() >= 8) {
      for (int tries = 0; tries < 16; ++tries) {
        const size_t at = Below(in.size() - 7);
        uint64_t v;
        std::memcpy(&v, in.data() + at, 8);
        if (v != 0 && v < (uint64_t{1} << 24) && at < span) return at;
      }
    }
    return Below(span);
  }

  template <typename T>
  void WriteInt(Input& in, size_t at, T v) {
    if (at + sizeof(T) <= in.size()) std::memcpy(in.data() + at, &v, sizeof(T));
  }

  void MutateOnce(Input& in, const Input& other) {
    switch (Below(11)) {
      case 0:  // flip one bit
        if (!in.empty()) in[Below(in.size())] ^= static_cast<uint8_t>(1u << Below(8));
        break;
      case 1: {  // set a byte to a random or boundary value
        static constexpr uint8_t kBytes[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
        if (!in.empty()) in[Below(in.size())] = Below(2) ? kBytes[Below(5)] : static_cast<uint8_t>(Below(256));
        break;
      }
      case 2: {  // smash a u64 field with an interesting value
        WriteInt<uint64_t>(in, Pick(in, 8), kInteresting[Below(std::size(kInteresting))]);
        break;
      }
      case 3: {  // smash a u32 field (types, dimension counts, the version)
        WriteInt<uint32_t>(in, Pick(in, 4), static_cast<uint32_t>(kInteresting[Below(std::size(kInteresting))]));
        break;
      }
      case 4: {  // nudge a u64 field by a little (off-by-one lengths and counts)
        const size_t at = Pick(in, 8);
        if (at + 8 <= in.size()) {
          uint64_t v;
          std::memcpy(&v, in.data() + at, 8);
          v += static_cast<uint64_t>(static_cast<int64_t>(Below(17)) - 8);
          WriteInt(in, at, v);
        }
        break;
      }
      case 5:  // truncate
        if (!in.empty()) in.resize(Below(in.size()));
        break;
      case 6: {  // splice: a prefix of this input and a suffix of another
        const size_t cut = Below(in.size() + 1);
        const size_t from = Below(other.size() + 1);
        in.resize(cut);
        in.insert(in.end(), other.begin() + static_cast<std::ptrdiff_t>(from), other.end());
        break;
      }
      case 7: {  // delete a chunk
        if (in.empty()) break;
        const size_t at = Below(in.size());
        const size_t len = 1 + Below(std::min<size_t>(64, in.size() - at));
        in.erase(in.begin() + static_cast<std::ptrdiff_t>(at), in.begin() + static_cast<std::ptrdiff_t>(at + len));
        break;
      }
      case 8: {  // duplicate a chunk in place (repeated keys, tensor infos, array elements)
        if (in.empty()) break;
        const size_t at = Below(in.size());
        const size_t len = 1 + Below(std::min<size_t>(256, in.size() - at));
        const Input chunk(in.begin() + static_cast<std::ptrdiff_t>(at),
                          in.begin() + static_cast<std::ptrdiff_t>(at + len));
        in.insert(in.begin() + static_cast<std::ptrdiff_t>(Below(in.size() + 1)), chunk.begin(), chunk.end());
        break;
      }
      case 9: {  // insert random bytes
        const size_t len = 1 + Below(16);
        Input bytes(len);
        for (auto& b : bytes) b = static_cast<uint8_t>(Below(256));
        in.insert(in.begin() + static_cast<std::ptrdiff_t>(Below(in.size() + 1)), bytes.begin(), bytes.end());
        break;
      }
      default: {  // copy a chunk of another input over this one
        if (in.empty() || other.empty()) break;
        const size_t from = Below(other.size());
        const size_t to = Below(in.size());
        const size_t len = std::min({other.size() - from, in.size() - to, size_t{1} + Below(64)});
        std::memcpy(in.data() + to, other.data() + from, len);
        break;
      }
    }
  }

  std::mt19937_64 rng_;
  size_t max_len_;
};

[[noreturn]] void Usage() {
  std::fprintf(stderr,
               "usage: fuzz_driver [--seconds N] [--iterations N] [--seed S] [--max-len BYTES]\n"
               "                   [--artifact-prefix PREFIX] CORPUS_DIR_OR_FILE...\n"
               "Runs every corpus input, then random mutations of them until the time or iteration\n"
               "budget is spent (--seconds 0 --iterations 0: the corpus only, e.g. to replay a crash).\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 10;
  uint64_t iterations = 0;  // 0: no limit other than the time
  uint64_t seed = std::random_device{}();
  size_t max_len = 1 << 18;
  std::string prefix;
  std::vector<fs::path> corpus_paths;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage();
      return argv[++i];
    };
    if (a == "--seconds") seconds = std::stod(value());
    else if (a == "--iterations") iterations = std::stoull(value());
    else if (a == "--seed") seed = std::stoull(value());
    else if (a == "--max-len") max_len = std::stoull(value());
    else if (a == "--artifact-prefix") prefix = value();
    else if (a == "-h" || a == "--help") Usage();
    else if (a.rfind("--", 0) == 0) Usage();
    else corpus_paths.emplace_back(a);
  }
  std::snprintf(g_crash_path, sizeof(g_crash_path), "%scrash-input", prefix.c_str());
  InstallCrashHandlers();

  std::vector<Input> corpus;
  for (const auto& p : corpus_paths) LoadCorpus(p, corpus);
  std::printf("fuzz_driver: %zu corpus inputs, seed %llu, %.0f s, max length %zu\n", corpus.size(),
              static_cast<unsigned long long>(seed), seconds, max_len);
  std::fflush(stdout);
  for (const auto& in : corpus) Run(in);
  if (corpus.empty()) corpus.emplace_back();  // mutate from nothing rather than not at all

  Mutator mutator(seed, max_len);
  std::mt19937_64 pick(seed ^ 0x9e3779b97f4a7c15ull);
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                    std::chrono::duration<double>(seconds));
  uint64_t runs = 0;
  Input current;
  while ((iterations == 0 || runs < iterations) && (seconds > 0 || iterations > 0)) {
    if (seconds > 0 && std::chrono::steady_clock::now() >= deadline) break;
    // Mostly a fresh copy of a seed; sometimes keep stacking mutations on the last input, which
    // reaches states that need several coordinated changes.
    if (current.empty() || pick() % 4 != 0) current = corpus[pick() % corpus.size()];
    mutator.Mutate(current, corpus[pick() % corpus.size()]);
    Run(current);
    ++runs;
  }
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("fuzz_driver: %llu mutated inputs in %.1f s, no crash\n", static_cast<unsigned long long>(runs), took);
  return 0;
}
